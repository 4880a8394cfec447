"""The sandbox library's exceptions: one tree, branched by what the caller can do.

    SandboxError
    ├── DockerUnavailable        the engine cannot be reached: start Docker, set DOCKER_HOST
    ├── ImageNotFound            the kernel image is missing: run `make image`
    ├── SandboxNotFound          no such sandbox (never existed, or removed)
    ├── SandboxExpired           it existed but idled past its expiry and was removed
    ├── SandboxStartError        the container or kernel did not come up; retrying may help
    ├── MemoryLimitTooLarge      the spec asks for more memory than the engine's host has: ask for less
    ├── CapacityExceeded         no room for another sandbox now: remove one, or retry once one expires
    ├── InvalidFilePath          a file name escapes /mnt/data, or names a link or a non-file
    ├── FileNotFoundInSandbox    no such file in /mnt/data
    ├── DiskFull                 /mnt/data is at its disk limit: delete files first
    ├── DataDirInUse             another manager holds this data directory: stop it or pick another
    └── ManagerClosed            the manager was closed, or never started

The user's failing code is never an exception: tracebacks, timeouts, out-of-memory kills and
dead kernels are statuses on `Execution`. A malformed `SandboxSpec` fails as pydantic's
`ValidationError` when it is built, before any of these can happen.
"""

from __future__ import annotations

__all__ = [
    "CapacityExceeded",
    "DataDirInUse",
    "DiskFull",
    "DockerUnavailable",
    "FileNotFoundInSandbox",
    "ImageNotFound",
    "InvalidFilePath",
    "ManagerClosed",
    "MemoryLimitTooLarge",
    "SandboxError",
    "SandboxExpired",
    "SandboxNotFound",
    "SandboxStartError",
]


class SandboxError(Exception):
    """Root of every error the sandbox library raises."""


class DockerUnavailable(SandboxError):
    """The Docker engine cannot be reached."""


class ImageNotFound(SandboxError):
    """The configured kernel image is not present in the Docker engine."""

    def __init__(self, image: str) -> None:
        self.image = image
        super().__init__(
            f"Kernel image {image!r} is not present in Docker: build it with `make image`, "
            "or point KERNELGATE_IMAGE at an image that exists."
        )


class _SandboxIdError(SandboxError):
    def __init__(self, message: str, sandbox_id: str) -> None:
        self.sandbox_id = sandbox_id
        super().__init__(message)


class SandboxNotFound(_SandboxIdError):
    """No sandbox with this id exists."""

    def __init__(self, sandbox_id: str) -> None:
        super().__init__(f"No sandbox {sandbox_id!r}.", sandbox_id)


class SandboxExpired(_SandboxIdError):
    """The sandbox idled past its expiry; its kernel and files are gone."""

    def __init__(self, sandbox_id: str) -> None:
        super().__init__(f"Sandbox {sandbox_id!r} is expired.", sandbox_id)


class SandboxStartError(_SandboxIdError):
    """The container or its kernel failed to start."""


class InvalidFilePath(SandboxError):
    """A file name that would leave /mnt/data, or names something other than a regular file."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        super().__init__(f"Invalid file path {name!r}: {reason}.")


class FileNotFoundInSandbox(_SandboxIdError):
    """The named file does not exist in the sandbox's /mnt/data."""

    def __init__(self, name: str, sandbox_id: str) -> None:
        self.name = name
        super().__init__(f"No file {name!r} in /mnt/data of sandbox {sandbox_id!r}.", sandbox_id)


class MemoryLimitTooLarge(SandboxError):
    """The host cannot honour the memory limit: the container would be killed before it reached it."""

    def __init__(self, memory_limit: str, host_bytes: int) -> None:
        self.memory_limit = memory_limit
        self.host_bytes = host_bytes
        super().__init__(
            f"memory_limit {memory_limit!r} is more than this host's {host_bytes / 1024**3:.1f} GiB of memory: "
            "ask for a smaller limit."
        )


class CapacityExceeded(SandboxError):
    """Another sandbox would pass the manager's cap on live sandboxes or on their summed memory limits."""


class DiskFull(_SandboxIdError):
    """/mnt/data has no room for the file: its disk limit (bytes or files) is reached."""

    def __init__(self, name: str, sandbox_id: str) -> None:
        self.name = name
        message = f"No room for {name!r}: /mnt/data of sandbox {sandbox_id!r} is at its disk limit. Delete files first."
        super().__init__(message, sandbox_id)


class ManagerClosed(SandboxError):
    """The sandbox manager is not running."""


class DataDirInUse(SandboxError):
    """Another live manager owns this data directory (two would remove each other's sandboxes)."""

    def __init__(self, data_dir: str) -> None:
        self.data_dir = data_dir
        super().__init__(
            f"Another kernelgate process is using the data directory {data_dir}: stop it, or set "
            "KERNELGATE_DATA_DIR to another directory."
        )
