"""The manager's configuration: read once by the application and passed down, never from the environment."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

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
