"""The gateway's own vocabulary for a conversation with a model that has the code interpreter.

The client's wire format (OpenAI Responses) translates its input into these items and renders the tool
loop's events (`_loop.py`) back out; each upstream API translates them into its own request. Models
see only these types.
"""

from __future__ import annotations

import base64
import enum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AssistantMessage",
    "CallStatus",
    "Citation",
    "CodeCall",
    "FunctionCall",
    "FunctionOutput",
    "Item",
    "SystemMessage",
    "UserMessage",
    "WrittenFile",
    "data_url",
    "split_data_url",
]


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, ser_json_bytes="base64", val_json_bytes="base64")


def data_url(media_type: str, data: bytes | str) -> str:
    """An image (or file) inline, as `UserMessage.images` and the APIs carry it: bytes, or base64 already."""
    encoded = base64.b64encode(data).decode() if isinstance(data, bytes) else data
    return f"data:{media_type};base64,{encoded}"


def split_data_url(url: str) -> tuple[str, str] | None:
    """(media type, base64 data) of a data URL; None for any other URL."""
    if not url.startswith("data:") or ";base64," not in url:
        return None
    media_type, data = url.removeprefix("data:").split(";base64,", 1)
    return media_type, data


class UserMessage(_Value):
    type: Literal["user"] = "user"
    text: str
    id: str | None = None
    """The wire format's id for it, where it gives input items one."""
    images: tuple[str, ...] = ()
    """Image URLs (`data:` URLs for uploaded ones) for a model that takes images."""


class SystemMessage(_Value):
    """A system or developer message in the conversation: the models read it with the instructions."""

    type: Literal["system"] = "system"
    text: str
    role: Literal["system", "developer"] = "system"
    id: str | None = None


class Citation(_Value):
    """A link in a message's text to a file in a container, over the `sandbox:/mnt/data/...` URL."""

    container_id: str
    file_id: str
    filename: str
    start_index: int
    end_index: int


class AssistantMessage(_Value):
    type: Literal["assistant"] = "assistant"
    id: str
    text: str
    citations: tuple[Citation, ...] = ()


class CallStatus(enum.StrEnum):
    COMPLETED = "completed"
    """The code ran to its end, or raised (the traceback is in the logs), as the hosted tool reports it."""
    INCOMPLETE = "incomplete"
    """The code was stopped at its timeout; the logs end with what happened to the kernel."""
    FAILED = "failed"
    """The kernel died or ran out of memory; the logs end with what happened and the limit."""


class WrittenFile(_Value):
    """A file in /mnt/data that a call created or changed, as a container file."""

    file_id: str
    path: str

    @property
    def filename(self) -> str:
        return self.path.rsplit("/", 1)[-1]


class CodeCall(_Value):
    type: Literal["code_call"] = "code_call"
    id: str
    code: str
    """The Python code, or (`tool` bash) the shell command."""
    tool: Literal["python", "bash", "text_editor"] = "python"
    """Python runs in the kernel; a bash command runs in the same sandbox (from the kernel, in /mnt/data); a
    text editor command (`code` is its JSON input) works on /mnt/data's files from the gateway."""
    container_id: str
    status: CallStatus
    logs: str = ""
    images: tuple[bytes, ...] = ()
    """PNG images the code displayed, in order."""
    files: tuple[WrittenFile, ...] = ()
    signature: bytes | None = None
    """Opaque data the model's provider attached to the call (Gemini's thought signature), sent back with it."""
    raised: bool = False
    """The code raised, or the command exited non-zero (the call is still `completed`, as hosted tools say)."""
    stdout: str = ""
    stderr: str = ""
    """What went to stderr, and a traceback: the APIs that report the two apart (Anthropic's)."""
    return_code: int = 0
    edit: dict[str, Any] | None = None
    """A text editor call's outcome: `command`, `error_code` (or None) and its details (editor.Edit)."""


class FunctionCall(_Value):
    """A call of one of the client's own function tools: the client runs it and sends the output back."""

    type: Literal["function_call"] = "function_call"
    id: str
    call_id: str
    name: str
    arguments: str
    signature: bytes | None = None


class FunctionOutput(_Value):
    type: Literal["function_output"] = "function_output"
    call_id: str
    output: str
    id: str | None = None


Item = Annotated[
    UserMessage | SystemMessage | AssistantMessage | CodeCall | FunctionCall | FunctionOutput,
    Field(discriminator="type"),
]
