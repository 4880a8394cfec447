"""Upstream providers: a server, the API it speaks and its key; named in a providers file, or built in.

A model name `Name/model` goes to provider `Name`. The built-in ones (`Anthropic/`, `Gemini/`) need no
file: the registry says which variables they read, and a table of the same name in the file replaces
them.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .registry import REGISTRY, ApiName

__all__ = ["Provider", "ProvidersFileError", "builtin_providers", "load_providers"]


class ProvidersFileError(ValueError):
    """The providers file cannot be read or holds a table kernelgate cannot use; the message says which."""


class Provider(BaseModel):
    """An upstream that serves models: a server, and which API it speaks.

    `chat` and `responses` are OpenAI's APIs (any OpenAI-compatible server); `anthropic` is Anthropic's
    Messages API and `gemini` Google's Gemini API, whose base URLs default to the providers' own.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str = ""
    api_key: str | None = None
    api_key_env: str | None = None
    """The variable the key is read from, named when it is missing."""
    api: ApiName = "chat"
    """The API it speaks: a name in the registry (`chat`, `responses`, `anthropic`, `gemini`)."""
    stream: bool = True
    """Ask for streamed answers; false for servers that cannot stream tool calls."""
    vision: bool | None = None
    """The models take images: the figures code displays go back with its result (default: on for
    `anthropic` and `gemini`, whose tool results take images, off for OpenAI-compatible servers)."""
    max_output_tokens: int | None = Field(default=None, gt=0)
    """Each turn's output limit when the request sets none; Anthropic needs one, so it defaults to 8192."""

    @model_validator(mode="before")
    @classmethod
    def _base_url_for_api(cls, values: Any) -> Any:
        if not isinstance(values, dict) or values.get("base_url"):
            return values
        entry = REGISTRY.get(values.get("api", "chat"))
        if entry is None:
            return values  # the api field says what is wrong
        if not entry.default_base_url:
            msg = f"base_url is required for api = {values.get('api', 'chat')!r}"
            raise ValueError(msg)
        return {**values, "base_url": entry.default_base_url}

    @property
    def takes_images(self) -> bool:
        return self.vision if self.vision is not None else self.api in ("anthropic", "gemini")


def load_providers(path: Path, environ: Mapping[str, str]) -> dict[str, Provider]:
    """Named providers from a TOML file: one table each, `api_key_env` naming the variable with its key.

    [ollama]
    base_url = "http://127.0.0.1:11434/v1"

    [OpenAI]
    base_url = "https://api.openai.com/v1"
    api_key_env = "OPENAI_API_KEY"
    api = "responses"
    """
    try:
        tables = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        msg = f"KERNELGATE_PROVIDERS: cannot read {path}: {exc}"
        raise ProvidersFileError(msg) from exc
    providers = {}
    for name, table in tables.items():
        values = dict(table) if isinstance(table, dict) else {}
        key_variable = values.get("api_key_env")
        if key_variable is not None:
            values["api_key"] = environ.get(str(key_variable))
        try:
            providers[name] = Provider.model_validate(values)
        except ValidationError as exc:
            msg = f"KERNELGATE_PROVIDERS: provider [{name}] in {path}: {exc.errors()[0]['msg']}"
            raise ProvidersFileError(msg) from exc
    return providers


def builtin_providers(environ: Mapping[str, str]) -> dict[str, Provider]:
    """The providers that need no file, with the keys and base URLs their own variables hold."""
    providers = {}
    for api, entry in REGISTRY.items():
        if entry.builtin is None:
            continue
        keys = [environ[variable] for variable in entry.key_variables if environ.get(variable)]
        providers[entry.builtin] = Provider(
            api=api,
            base_url=environ.get(entry.base_url_variable or "") or entry.default_base_url,
            api_key=keys[-1] if keys else None,
            api_key_env=entry.key_variables[0] if entry.key_variables else None,
        )
    return providers
