"""What the engine holds for a data directory, read without owning it: for operators' commands, which
must work beside a running gateway (that holds the data directory's lock) and after one died."""

from __future__ import annotations

from dataclasses import dataclass

from ._backend import Backend
from ._config import SandboxConfig
from ._labels import DATA_DIR, POOLED, SANDBOX_ID, spec_from_labels
from ._manager import labels_of
from ._sandbox import Sandbox
from .backends.docker import DockerBackend

__all__ = ["SandboxInfo", "survey"]


@dataclass(frozen=True, slots=True)
class SandboxInfo:
    """One sandbox's container as the engine and the data directory tell it."""

    sandbox_id: str
    container_id: str
    running: bool
    pooled: bool
    """In the warm pool: made ahead, never handed out."""
    memory_limit: str
    memory_used: int | None
    """Bytes now, or None when not known (stopped, or a remote engine)."""
    expires_at: float | None
    """Unix time of its expiry if nothing uses it first (None: its labels are not a sandbox's)."""
    labels: dict[str, str]
    """Its labels as its manager knows them: a claimed pool sandbox's are its claim's."""
    caller_labels: dict[str, str]
    """The labels its creator gave it (`SandboxSpec.labels`), such as the gateway's container id."""


async def survey(config: SandboxConfig, backend: Backend | None = None) -> list[SandboxInfo]:
    """Every container of `config.data_dir` (running or not), oldest first; nothing is changed."""
    runtime = backend if backend is not None else DockerBackend(config.docker_host)
    try:
        found = await runtime.list_managed(f"{DATA_DIR}={config.data_dir}")
        infos = [_describe(config, runtime, info.id, info.running, labels_of(info.labels)) for info in found]
    finally:
        if backend is None:
            runtime.close()
    return sorted(infos, key=lambda info: (info.expires_at or 0, info.sandbox_id))


def _describe(
    config: SandboxConfig, runtime: Backend, container_id: str, running: bool, labels: dict[str, str]
) -> SandboxInfo:
    sandbox_id = labels.get(SANDBOX_ID, "")
    try:
        spec, created_at = spec_from_labels(labels)
    except (KeyError, ValueError):
        memory_limit, expires_at, caller_labels = labels.get("kernelgate.memory_limit", "?"), None, {}
    else:
        sandbox = Sandbox(sandbox_id, spec, config, runtime, created_at)  # not started: only its files are read
        sandbox._load_activity()
        memory_limit, expires_at, caller_labels = spec.memory_limit, sandbox.expires_at, spec.labels
    return SandboxInfo(
        sandbox_id=sandbox_id,
        container_id=container_id,
        running=running,
        pooled=labels.get(POOLED) == "true",
        memory_limit=memory_limit,
        memory_used=runtime.memory_used(container_id) if running else None,
        expires_at=expires_at,
        labels=labels,
        caller_labels=caller_labels,
    )
