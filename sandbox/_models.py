"""Typed values at the library's boundary: what a sandbox is asked for, and what running code returns.

Raw Jupyter messages never leave `_kernel.py`; everything a caller sees is one of these frozen models.
"""

from __future__ import annotations

import enum
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "DisplayOutput",
    "ErrorOutput",
    "Execution",
    "ExecutionEvent",
    "ExecutionStatus",
    "Finished",
    "MimeBundle",
    "Output",
    "ResultOutput",
    "SandboxFile",
    "SandboxSpec",
    "StreamOutput",
    "parse_memory_limit",
    "parse_size",
]

_SIZE = re.compile(r"^\s*(\d+)\s*([bkmg]?)b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
# Below this ipykernel with numpy imported cannot start; Docker's own floor is 6 MB.
MIN_MEMORY = 128 * 1024**2


def parse_size(text: str) -> int:
    """Bytes in a Docker-style size: `1g`, `512m`, `4G`, `1048576`."""
    match = _SIZE.match(text)
    if match is None:
        msg = f"{text!r} is not a size such as '1g' or '512m'"
        raise ValueError(msg)
    return int(match[1]) * _UNITS[match[2].lower()]


def parse_memory_limit(text: str) -> int:
    """Bytes in a Docker-style size (see `parse_size`), at least what a kernel needs."""
    try:
        size = parse_size(text)
    except ValueError:
        msg = f"memory limit {text!r} is not a size such as '1g' or '512m'"
        raise ValueError(msg) from None
    if size < MIN_MEMORY:
        msg = f"memory limit {text!r} is below the 128m a kernel needs"
        raise ValueError(msg)
    return size


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SandboxSpec(_Frozen):
    """What a new sandbox should be: its limits, its first files and its lifetime."""

    memory_limit: str = "1g"
    """A Docker size: OpenAI's tiers `1g`, `4g`, `16g`, `64g`, or any such as `512m`."""
    files: dict[str, bytes | Path] = Field(default_factory=dict)
    """Files in /mnt/data before create() returns: name -> content, or a host path to copy."""
    network: bool = False
    """Give the container a network. Off by default: the sandbox sees only `lo`."""
    idle_timeout: float = Field(default=20 * 60, gt=0)
    """Seconds after the last operation when the sandbox expires and is removed."""
    cpus: float | None = Field(default=None, gt=0)
    """CPU quota in cores; None takes the manager's default."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Extra container labels, kept across manager restarts (callers store their own ids here)."""

    @field_validator("memory_limit")
    @classmethod
    def _valid_size(cls, value: str) -> str:
        parse_memory_limit(value)
        return value.strip().lower()

    @property
    def memory_bytes(self) -> int:
        return parse_memory_limit(self.memory_limit)


MimeBundle = dict[str, str | bytes]
"""MIME type -> data. Binary types (PNG, JPEG, GIF, PDF) are decoded to bytes; JSON is kept as text."""


class StreamOutput(_Frozen):
    type: Literal["stream"] = "stream"
    name: Literal["stdout", "stderr"]
    text: str


class ResultOutput(_Frozen):
    """The value of the cell's last expression (Jupyter's `execute_result`)."""

    type: Literal["result"] = "result"
    data: MimeBundle
    execution_count: int | None = None

    @property
    def text(self) -> str | None:
        value = self.data.get("text/plain")
        return value if isinstance(value, str) else None


class DisplayOutput(_Frozen):
    """A rich output such as a matplotlib figure (Jupyter's `display_data`)."""

    type: Literal["display"] = "display"
    data: MimeBundle

    @property
    def png(self) -> bytes | None:
        value = self.data.get("image/png")
        return value if isinstance(value, bytes) else None


class ErrorOutput(_Frozen):
    """An exception raised by the code, with its plain-text traceback."""

    type: Literal["error"] = "error"
    name: str
    value: str
    traceback: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return "\n".join(self.traceback) if self.traceback else f"{self.name}: {self.value}"


Output = Annotated[StreamOutput | ResultOutput | DisplayOutput | ErrorOutput, Field(discriminator="type")]


class ExecutionStatus(enum.StrEnum):
    OK = "ok"
    ERROR = "error"
    """The code raised; the kernel and its variables are fine."""
    TIMEOUT = "timeout"
    OUT_OF_MEMORY = "out_of_memory"
    KERNEL_DIED = "kernel_died"


class SandboxFile(_Frozen):
    """A regular file in /mnt data, named relative to it (`out/plot.png`)."""

    name: str
    size: int
    modified: float
    """Unix time of the last change, in seconds."""

    @property
    def path(self) -> str:
        return f"/mnt/data/{self.name}"


class Execution(_Frozen):
    """The result of running one piece of code."""

    status: ExecutionStatus
    outputs: tuple[Output, ...] = ()
    error: ErrorOutput | None = None
    duration: float
    """Seconds from the start of execution (not of queueing) to its end."""
    files: tuple[SandboxFile, ...] = ()
    """Files in /mnt/data that the execution created or changed."""
    state_kept: bool = True
    """False when the kernel was restarted: every variable defined before is gone."""
    message: str | None = None
    """For timeout, out-of-memory and kernel death: what happened and what it cost, in words."""
    execution_count: int | None = None
    dropped_text_chars: int = 0
    """Characters of stdout and stderr the output cap dropped (a marker in the text says where)."""
    dropped_display_bytes: int = 0
    """Bytes of results, displays and tracebacks the caps dropped (a note at the end says how many)."""

    @property
    def stdout(self) -> str:
        return "".join(o.text for o in self.outputs if isinstance(o, StreamOutput) and o.name == "stdout")

    @property
    def stderr(self) -> str:
        return "".join(o.text for o in self.outputs if isinstance(o, StreamOutput) and o.name == "stderr")

    @property
    def result(self) -> ResultOutput | None:
        return next((o for o in self.outputs if isinstance(o, ResultOutput)), None)

    @property
    def images(self) -> tuple[bytes, ...]:
        return tuple(o.png for o in self.outputs if isinstance(o, DisplayOutput) and o.png is not None)


class Finished(_Frozen):
    """The last event of an execution stream, carrying the whole result."""

    type: Literal["finished"] = "finished"
    execution: Execution


ExecutionEvent = Annotated[
    StreamOutput | ResultOutput | DisplayOutput | ErrorOutput | Finished, Field(discriminator="type")
]
