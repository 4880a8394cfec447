"""The manager's configuration: read once by the application and passed down, never from the environment."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ._models import SandboxSpec

__all__ = ["SandboxConfig"]

DEFAULT_IMAGE = "kernelgate/kernel:latest"
# Unix socket paths are limited to 107 bytes; the kernel's sockets are `<run dir>/<id>/k-N`.
_MAX_SOCKET_PATH = 100


class SandboxConfig(BaseModel):
    """How a `SandboxManager` runs sandboxes. Every field has a safe default."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data_dir: Path
    """Holds each sandbox's /mnt/data and kernel sockets; its containers are labelled with it."""
    image: str = DEFAULT_IMAGE
    docker_host: str | None = None
    """Docker engine URL, such as unix:///var/run/docker.sock; None asks docker's default."""
    runtime: str | None = None
    """The Docker runtime the containers run under: None for the engine's default (runc), or `runsc`
    (gVisor) once registered with the engine (images/runsc.sh does that)."""
    cpus: float = Field(default=1.0, gt=0)
    pids_limit: int = Field(default=512, gt=0)
    execution_timeout: float | None = Field(default=600.0, gt=0)
    """Seconds an execution may run when the caller gives no timeout; None lets code run forever."""
    kernel_start_timeout: float = Field(default=30.0, gt=0)
    interrupt_grace: float = Field(default=3.0, gt=0)
    """Seconds a timed-out execution gets to stop after the interrupt before the kernel is restarted."""
    reap_interval: float = Field(default=5.0, gt=0)
    """Seconds between the reaper's checks for expired sandboxes."""
    kernel_user: str | None = None
    """uid:gid the kernel runs as; None picks the caller's own ids, or the image's 1000:1000 under root."""
    adopt: bool = True
    """On start, reconnect to the live sandboxes an earlier manager with this data_dir left behind.
    False removes them instead."""
    max_sandboxes: int = Field(default=64, gt=0)
    """Live sandboxes at most; one more is refused with CapacityExceeded."""
    memory_overcommit: float = Field(default=1.5, gt=0)
    """The live sandboxes' memory limits may add up to this multiple of the host's memory (most code
    uses far less than its limit); past it a new sandbox is refused with CapacityExceeded."""
    disk_limit: int | None = Field(default=8 * 1024**3, gt=0)
    """Bytes of /mnt/data per sandbox, enforced by a filesystem of its own (needs root; None: no limit)."""
    max_files: int = Field(default=200_000, gt=0)
    """Files and directories in /mnt/data per sandbox, with the disk limit."""
    max_output_chars: int = Field(default=1_000_000, gt=0)
    """Characters of stdout and stderr an execution keeps: the first half and the last half, with a marker
    saying how much was dropped between them."""
    max_displays: int = Field(default=100, gt=0)
    """Results, displays (figures) and tracebacks an execution keeps; later ones are dropped with a note."""
    max_display_bytes: int = Field(default=32 * 1024**2, gt=0)
    """Their summed size per execution."""
    max_listed_files: int = Field(default=1000, gt=0)
    """Changed files an execution lists (the first by name); a note says how many more there were."""
    max_message_bytes: int = Field(default=16 * 1024**2, gt=0)
    """The largest kernel message read; ZMQ drops larger ones before they reach memory. Large writes to
    stdout and stderr leave the kernel in 256 KiB messages, so only a display larger than this is lost."""
    self_stop_grace: float = Field(default=60.0, gt=0)
    """Seconds past its expiry after which a sandbox that no manager removed (its process was stopped
    or crashed) stops its own kernel, so a container left behind holds no memory or CPU."""
    self_stop_check: float = Field(default=15.0, gt=0)
    """Seconds between a sandbox's own checks of that deadline."""
    pool: dict[str, int] = Field(default_factory=dict)
    """The warm pool: how many fresh sandboxes to keep ready per memory limit, such as
    `{"1g": 4, "4g": 1}`. A create() asking for a pooled limit (with no network and no cpus of its own)
    gets one of them at once, and the pool makes another in the background. Empty: no pool."""
    warm_imports: tuple[str, ...] = ("numpy", "pandas", "matplotlib.pyplot")
    """Modules a pooled kernel imports before it is handed out, so that the code's first `import pandas`
    costs nothing. They are loaded, not bound: the code's namespace is as empty as a cold kernel's."""
    pool_memory_reserve: int = Field(default=2 * 1024**3, ge=0)
    """Bytes of host memory the pool leaves free: it makes no sandbox while the host has less available,
    and gives one back at each reaper pass until it has more (live sandboxes are never touched)."""

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        # Containers are labelled with this path: it must name the same directory from any cwd.
        return value.expanduser().absolute()

    def model_post_init(self, context: object) -> None:
        socket_path = self.run_dir / ("x" * 24) / "k-5"
        if len(os.fsencode(socket_path)) > _MAX_SOCKET_PATH:
            msg = (
                f"data_dir {str(self.data_dir)!r} is too long for the kernel's unix sockets "
                f"(at most {_MAX_SOCKET_PATH - 36} characters): set KERNELGATE_DATA_DIR to a shorter path."
            )
            raise ValueError(msg)

    @field_validator("pool")
    @classmethod
    def _pool_tiers(cls, value: dict[str, int]) -> dict[str, int]:
        tiers: dict[str, int] = {}
        for limit, size in value.items():
            if size < 0:
                msg = f"the pool's size for {limit!r} is negative"
                raise ValueError(msg)
            tier = SandboxSpec(memory_limit=limit).memory_limit  # the same check and spelling as a create's
            if size:
                tiers[tier] = tiers.get(tier, 0) + size
        return tiers

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    @property
    def control_dir(self) -> Path:
        """Per sandbox, the files the manager writes for the container (the kernel's connection file, the
        self-stop deadline): mounted read-only, so code in the sandbox can never change what it reads."""
        return self.data_dir / "control"

    @property
    def sandboxes_dir(self) -> Path:
        return self.data_dir / "sandboxes"

    @property
    def user(self) -> tuple[int, int]:
        if self.kernel_user is not None:
            uid, _, gid = self.kernel_user.partition(":")
            return int(uid), int(gid or uid)
        if os.getuid() == 0:
            return 1000, 1000
        return os.getuid(), os.getgid()
