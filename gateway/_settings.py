"""Settings: read from the environment once at start-up and passed down; nothing else reads os.environ."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sandbox import SandboxConfig, parse_size

from ._errors import SettingsError
from .upstreams.providers import Provider, ProvidersFileError, builtin_providers, load_providers
from .upstreams.registry import ApiName

__all__ = ["Settings", "SettingsError"]


def _default_data_dir(environ: Mapping[str, str]) -> Path:
    base = environ.get("XDG_DATA_HOME") or str(Path(environ.get("HOME", "/tmp")) / ".local" / "share")
    return Path(base) / "kernelgate"


# Environment variable -> Settings field.
_VARIABLES = {
    "KERNELGATE_HOST": "host",
    "KERNELGATE_PORT": "port",
    "KERNELGATE_DATA_DIR": "data_dir",
    "KERNELGATE_IMAGE": "image",
    "DOCKER_HOST": "docker_host",
    "KERNELGATE_EXECUTION_TIMEOUT": "execution_timeout",
    "KERNELGATE_CPUS": "cpus",
    "KERNELGATE_RUNTIME": "runtime",
    "KERNELGATE_LOG_LEVEL": "log_level",
    "KERNELGATE_LOG_FORMAT": "log_format",
    "KERNELGATE_API_KEY": "api_key",
    "KERNELGATE_MAX_UPLOAD_BYTES": "max_upload_bytes",
    "KERNELGATE_MAX_JSON_BYTES": "max_json_bytes",
    "KERNELGATE_MAX_SANDBOXES": "max_sandboxes",
    "KERNELGATE_DISK_LIMIT": "disk_limit",
    "KERNELGATE_MAX_FILES": "max_files",
    "KERNELGATE_MEMORY_OVERCOMMIT": "memory_overcommit",
    "KERNELGATE_EXPIRY_MINUTE_SECONDS": "expiry_minute_seconds",
    "KERNELGATE_MAX_OUTPUT_CHARS": "max_output_chars",
    "KERNELGATE_MAX_DISPLAYS": "max_displays",
    "KERNELGATE_MAX_DISPLAY_BYTES": "max_display_bytes",
    "KERNELGATE_MAX_ITERATIONS": "max_iterations",
    "KERNELGATE_UPSTREAM_BASE_URL": "upstream_base_url",
    "KERNELGATE_UPSTREAM_API_KEY": "upstream_api_key",
    "KERNELGATE_UPSTREAM_API": "upstream_api",
    "KERNELGATE_UPSTREAM_TIMEOUT": "upstream_timeout",
    "KERNELGATE_UPSTREAM_STREAM": "upstream_stream",
    "KERNELGATE_UPSTREAM_VISION": "upstream_vision",
    "KERNELGATE_CASSETTE": "cassette",
    "KERNELGATE_CASSETTE_MODE": "cassette_mode",
    "KERNELGATE_PROVIDERS": "providers_file",
    "KERNELGATE_POOL": "pool",
    "KERNELGATE_WARM_IMPORTS": "warm_imports",
    "KERNELGATE_POOL_MEMORY_RESERVE": "pool_memory_reserve",
}


class Settings(BaseModel):
    """Everything the gateway can be told, each with its environment variable."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    data_dir: Path
    image: str = "kernelgate/kernel:latest"
    docker_host: str | None = None
    execution_timeout: float = Field(default=600.0, gt=0)
    cpus: float = Field(default=1.0, gt=0)
    runtime: str | None = None
    """The Docker runtime of the sandboxes: unset for the engine's default (runc), `runsc` for gVisor."""
    log_level: str = "info"
    log_format: Literal["text", "json"] = "text"
    """`json`: one object per line, with the request, response and container ids of each."""
    api_key: str | None = None
    """When set, every /v1 route needs `Authorization: Bearer <key>`."""
    max_upload_bytes: int = Field(default=512 * 1024**2, gt=0)
    """The largest multipart upload (a file and its form)."""
    max_json_bytes: int = Field(default=32 * 1024**2, gt=0)
    """The largest body of any other request (JSON): far smaller, since it is parsed in memory."""
    max_sandboxes: int = Field(default=64, gt=0)
    """Live sandboxes at most; one more is a 429."""
    memory_overcommit: float = Field(default=1.5, gt=0)
    """Live sandboxes' memory limits may add up to this multiple of the host's memory; past it, a 429."""
    pool: dict[str, int] = Field(default_factory=lambda: {"1g": 2})
    """Fresh sandboxes kept ready per memory limit (`1g=4,4g=1`; `0` for none): a container made with
    one of these limits starts at once, its kernel already running and its warm imports done."""
    warm_imports: tuple[str, ...] = ("numpy", "pandas", "matplotlib.pyplot")
    """Modules a pooled kernel has imported before it is handed out (`numpy,pandas`; `none`)."""
    pool_memory_reserve: int = Field(default=2 * 1024**3, ge=0)
    """Host memory the pool leaves free (`2g`): below it the pool shrinks and stops refilling."""
    expiry_minute_seconds: float = Field(default=60.0, gt=0)
    """How long one minute of a container's `expires_after` lasts: lower it to test expiry quickly."""
    disk_limit: int | None = Field(default=8 * 1024**3, gt=0)
    """Bytes of /mnt/data per sandbox, as a size (`8g`); `off` for none. Needs a root gateway."""
    max_files: int = Field(default=200_000, gt=0)
    """Files and directories in /mnt/data per sandbox (with the disk limit)."""
    max_output_chars: int = Field(default=1_000_000, gt=0)
    """Characters of stdout and stderr a call keeps: its first and last halves, with a marker between."""
    max_displays: int = Field(default=100, gt=0)
    """Figures, results and tracebacks a call keeps; later ones are dropped with a note in its logs."""
    max_display_bytes: int = Field(default=32 * 1024**2, gt=0)
    max_iterations: int = Field(default=10, ge=1)
    """Model turns that run code before a response ends as incomplete."""
    upstream_base_url: str | None = None
    """An OpenAI-compatible server for models other than kernelgate/exec (OpenAI, Ollama, vLLM, ...)."""
    upstream_api_key: str | None = None
    upstream_api: ApiName = "chat"
    """Which API the default upstream speaks: Chat Completions, OpenAI's Responses, Anthropic, Gemini."""
    upstream_timeout: float = Field(default=120.0, gt=0)
    upstream_stream: bool = True
    upstream_vision: bool | None = None
    cassette: Path | None = None
    """A file of recorded upstream exchanges (see gateway/upstreams/cassette.py and the README)."""
    cassette_mode: Literal["record", "replay"] = "replay"
    providers_file: Path | None = None
    providers: dict[str, Provider] = Field(default_factory=dict)
    """Named providers, routed by a `Provider/model` prefix (case-insensitive) that is stripped."""
    builtin: dict[str, Provider] = Field(default_factory=lambda: builtin_providers({}))
    """`OpenAI/`, `Anthropic/` and `Gemini/`, with the keys and base URLs of the providers' own variables."""

    @field_validator("pool", mode="before")
    @classmethod
    def _pool_sizes(cls, value: object) -> object:
        """`1g=4,4g=1` from the environment; `0`, `off` or `none` for no pool."""
        if not isinstance(value, str):
            return value
        if value.strip().lower() in ("0", "off", "none"):
            return {}
        sizes: dict[str, object] = {}
        for part in filter(None, (p.strip() for p in value.split(","))):
            limit, equals, size = part.partition("=")
            if not equals:
                msg = f"{part!r} is not memory_limit=count, as in 1g=4,4g=1"
                raise ValueError(msg)
            sizes[limit.strip()] = size.strip()
        return sizes

    @field_validator("warm_imports", mode="before")
    @classmethod
    def _module_names(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        if value.strip().lower() in ("none", "off"):
            return ()
        return tuple(name.strip() for name in value.split(",") if name.strip())

    @field_validator("pool_memory_reserve", mode="before")
    @classmethod
    def _reserve_size(cls, value: object) -> object:
        return parse_size(value) if isinstance(value, str) else value

    @field_validator("disk_limit", mode="before")
    @classmethod
    def _disk_size(cls, value: object) -> object:
        if isinstance(value, str):
            return None if value.strip().lower() in ("off", "none", "0") else parse_size(value)
        return value

    def all_providers(self) -> dict[str, Provider]:
        """Every named provider, as named: the built-in ones, then KERNELGATE_PROVIDERS' (a name there that
        differs from a built-in one only in case replaces it; routing ignores case)."""
        named = {name.lower(): (name, provider) for name, provider in {**self.builtin, **self.providers}.items()}
        return dict(named.values())

    def default_provider(self) -> Provider | None:
        """The upstream for model names without a known prefix: KERNELGATE_UPSTREAM_*.

        With KERNELGATE_UPSTREAM_API=anthropic or gemini and no base URL, the built-in provider.
        """
        builtin = {p.api: p for p in self.builtin.values()}.get(self.upstream_api)
        if not self.upstream_base_url and builtin is None:
            return None
        base = builtin or Provider(base_url=self.upstream_base_url or "", api=self.upstream_api)
        return base.model_copy(
            update={
                "base_url": self.upstream_base_url or base.base_url,
                "api_key": self.upstream_api_key or base.api_key,
                "api_key_env": None if self.upstream_base_url else base.api_key_env,
                "stream": self.upstream_stream,
                "vision": self.upstream_vision,
            }
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {"data_dir": _default_data_dir(env)}
        values.update({field: env[name] for name, field in _VARIABLES.items() if env.get(name)})
        values["builtin"] = builtin_providers(env)
        if env.get("KERNELGATE_PROVIDERS"):
            try:
                values["providers"] = load_providers(Path(env["KERNELGATE_PROVIDERS"]), env)
            except ProvidersFileError as exc:
                raise SettingsError(str(exc)) from exc
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise SettingsError(_explain(exc)) from exc

    def sandbox_config(self, data_dir: Path | None = None, *, pool: bool = False) -> SandboxConfig:
        """The sandbox manager's configuration; with the warm pool only for `pool` (the serving gateway)."""
        try:
            return SandboxConfig(
                data_dir=data_dir or self.data_dir,
                image=self.image,
                docker_host=self.docker_host,
                cpus=self.cpus,
                runtime=self.runtime,
                execution_timeout=self.execution_timeout,
                max_sandboxes=self.max_sandboxes,
                memory_overcommit=self.memory_overcommit,
                disk_limit=self.disk_limit,
                max_files=self.max_files,
                max_output_chars=self.max_output_chars,
                max_displays=self.max_displays,
                max_display_bytes=self.max_display_bytes,
                # Check for expired sandboxes often enough for the shortest expiry to be on time.
                reap_interval=min(5.0, self.expiry_minute_seconds / 12),
                pool=self.pool if pool else {},
                warm_imports=self.warm_imports,
                pool_memory_reserve=self.pool_memory_reserve,
            )
        except ValidationError as exc:
            raise SettingsError(_explain(exc)) from exc


def _explain(exc: ValidationError) -> str:
    by_field = {field: name for name, field in _VARIABLES.items()}
    problems = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        where = by_field.get(field, field or "settings")
        problems.append(f"{where}: {error['msg']}")
    return "; ".join(problems)
