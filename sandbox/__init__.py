"""kernelgate's sandbox library: stateful Jupyter kernels in limited Docker containers, with no HTTP.

async with SandboxManager(SandboxConfig(data_dir=Path("/var/lib/kernelgate"))) as manager:
    sandbox = await manager.create(SandboxSpec(memory_limit="1g"))
    execution = await sandbox.execute("print(6 * 7)")
    assert execution.stdout == "42\\n"
"""

from __future__ import annotations

from ._config import SandboxConfig
from ._disk import available as disk_limits_unavailable
from ._errors import (
    CapacityExceeded,
    DataDirInUse,
    DiskFull,
    DockerUnavailable,
    FileNotFoundInSandbox,
    ImageNotFound,
    InvalidFilePath,
    ManagerClosed,
    MemoryLimitTooLarge,
    SandboxError,
    SandboxExpired,
    SandboxNotFound,
    SandboxStartError,
)
from ._manager import EngineStatus, Recovery, SandboxManager, labels_of
from ._models import (
    DisplayOutput,
    ErrorOutput,
    Execution,
    ExecutionEvent,
    ExecutionStatus,
    Finished,
    MimeBundle,
    Output,
    ResultOutput,
    SandboxFile,
    SandboxSpec,
    StreamOutput,
    parse_memory_limit,
    parse_size,
)
from ._sandbox import Sandbox
from ._survey import SandboxInfo, survey

__all__ = [
    "CapacityExceeded",
    "DataDirInUse",
    "DiskFull",
    "DisplayOutput",
    "DockerUnavailable",
    "EngineStatus",
    "ErrorOutput",
    "Execution",
    "ExecutionEvent",
    "ExecutionStatus",
    "FileNotFoundInSandbox",
    "Finished",
    "ImageNotFound",
    "InvalidFilePath",
    "ManagerClosed",
    "MemoryLimitTooLarge",
    "MimeBundle",
    "Output",
    "Recovery",
    "ResultOutput",
    "Sandbox",
    "SandboxConfig",
    "SandboxError",
    "SandboxExpired",
    "SandboxFile",
    "SandboxInfo",
    "SandboxManager",
    "SandboxNotFound",
    "SandboxSpec",
    "SandboxStartError",
    "StreamOutput",
    "disk_limits_unavailable",
    "labels_of",
    "parse_memory_limit",
    "parse_size",
    "survey",
]
