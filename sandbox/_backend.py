"""What a sandbox needs from the system that runs its kernels: the seam a new backend implements.

    Backend                         one per manager: the engine, and every sandbox's container in it
    ├── version() host() image_id()     is the engine there, how much memory it has, is the image there
    ├── available_memory()              how much of it is available now (for the warm pool)
    ├── memory_used(container_id)       how much a container uses now
    ├── watch(label, on_event)          `die` and `oom` events of the containers with a label
    ├── list_managed(label)             the containers an earlier manager left, to adopt or remove
    ├── remove(container_id)            a container no sandbox owns any more
    └── box(...) -> Box                 a sandbox's container, not started yet
    Box                             one per sandbox: a container with a kernel in it
    ├── start(spec, owner) adopt(info)  run it and connect to its kernel; or reconnect to a live one
    ├── interrupt() restart(...)        SIGINT for the code; a fresh kernel with /mnt/data kept
    ├── set_cpu_weight(weight)          a pooled container's low CPU share raised once it is claimed
    ├── stopped() death(info)           whether it really stopped, and how its kernel died (OOM or not)
    ├── kernel                          the connected KernelClient
    └── remove()

A sandbox shares three directories on the gateway's host with its kernel: its files (`ContainerSpec.
data_dir`, the code's /mnt/data), the kernel's ipc sockets (`run_dir`) and its connection file
(`control_dir`, read-only to the code). The sandbox reads and writes the files there itself, and the
kernel client connects through the sockets there; a backend decides how the kernel sees them (Docker:
bind mounts). A backend on other machines (Kubernetes) must share them as volumes the gateway also
mounts, or move file access and the kernel's transport behind this protocol.

The Docker engine (with any runtime it has registered: runc, gVisor's runsc) is the one backend today:
`backends/docker/`. `tests/test_backend.py` is the contract every backend must pass.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ._errors import SandboxError

if TYPE_CHECKING:
    from ._kernel import KernelClient

__all__ = [
    "Backend",
    "Box",
    "ContainerEvent",
    "ContainerGone",
    "ContainerInfo",
    "ContainerSpec",
    "Death",
    "HostInfo",
    "Watch",
]


class ContainerGone(SandboxError):
    """Strictly private: the container no longer exists in Docker."""


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    name: str
    image: str
    labels: dict[str, str]
    memory_bytes: int
    cpus: float
    pids_limit: int
    user: str
    network: bool
    tmpfs_bytes: int
    data_dir: Path
    """The sandbox's files, which its code sees read-write at /mnt/data (and works in)."""
    runtime: str | None = None
    environment: dict[str, str] = field(default_factory=dict)
    cpu_weight: int | None = None
    """Its share of the CPU under contention, relative to a live sandbox's 1024; None is a live sandbox's.
    A backend whose runtime cannot change it later (`set_cpu_weight`) ignores it."""


@dataclass(frozen=True, slots=True)
class ContainerInfo:
    id: str
    labels: dict[str, str]
    running: bool
    exit_code: int
    oom_killed: bool
    runtime: str | None = None
    """The engine's runtime for it (None: the engine's default)."""


@dataclass(frozen=True, slots=True)
class HostInfo:
    memory: int
    """Bytes."""
    runtimes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ContainerEvent:
    container_id: str
    action: str
    """`die` or `oom`."""


@dataclass(frozen=True)
class Death:
    """How a sandbox's kernel died, in no engine's terms."""

    exit_code: int
    oom_killed: bool
    """The OOM killer took it: the sandbox's memory limit, not the code, ended it."""


class Watch(Protocol):
    """A running subscription to the backend's container events."""

    @property
    def alive(self) -> bool: ...

    def close(self) -> None: ...


class Box(Protocol):
    """One sandbox's container with its kernel."""

    name: str
    id: str | None
    kernel: KernelClient | None
    died: asyncio.Event
    """Set when the container may have stopped; `stopped()` says whether it really did."""
    oom: asyncio.Event
    """Set when the OOM killer took a process in the container."""

    def notify(self, action: str) -> None: ...

    async def start(self, spec: ContainerSpec, owner: tuple[int, int] | None) -> None: ...

    async def adopt(self, info: ContainerInfo) -> None: ...

    async def restart(self, still_wanted: Callable[[], None]) -> None: ...

    async def interrupt(self) -> None: ...

    async def stopped(self) -> ContainerInfo | None: ...

    async def death(self, info: ContainerInfo) -> Death: ...

    def oom_kills(self) -> int | None: ...

    async def set_cpu_weight(self, weight: int | None) -> None: ...

    def close_kernel(self) -> None: ...

    async def remove(self) -> None: ...


class Backend(Protocol):
    """The engine sandboxes run in."""

    async def version(self) -> str: ...

    async def host(self) -> HostInfo: ...

    def available_memory(self) -> int | None:
        """Bytes of memory the engine's host has available now (a cheap read); None when not known here."""
        ...

    def memory_used(self, container_id: str) -> int | None:
        """Bytes of memory a container uses now, as its limit counts them (a cheap read); None if unknown."""
        ...

    async def image_id(self, image: str) -> str | None: ...

    async def list_managed(self, label: str) -> list[ContainerInfo]: ...

    async def remove(self, container_id: str) -> None: ...

    async def watch(self, label: str, on_event: Callable[[ContainerEvent], None]) -> Watch: ...

    def box(
        self, sandbox_id: str, control_dir: Path, run_dir: Path, start_timeout: float, max_message_bytes: int
    ) -> Box: ...

    def close(self) -> None: ...
