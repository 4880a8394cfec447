"""What the tool loop needs of a model: given the conversation so far, stream one turn.

A turn is text deltas (the answer: the loop ends), or code deltas closed by `CodeReady` (the loop
runs the code, appends the call with its result, and asks the model again). Each upstream API (Chat
Completions, Responses, Anthropic Messages, Gemini) is one module that turns a `Turn` into its request
and its answer into these events.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from .._errors import GatewayError
from .items import Item

__all__ = [
    "ERROR_CODE_HEADER",
    "CodeDelta",
    "CodeReady",
    "FunctionCallRequested",
    "FunctionTool",
    "Model",
    "ModelError",
    "ModelEvent",
    "OutputFormat",
    "Sampling",
    "Stopped",
    "TextDelta",
    "ToolChoice",
    "Turn",
    "Usage",
]


@dataclass(frozen=True, slots=True)
class TextDelta:
    delta: str


@dataclass(frozen=True, slots=True)
class CodeDelta:
    delta: str
    tool: Literal["python", "bash", "text_editor"] = "python"
    """Which sandbox tool the call is for (the first delta of a call decides)."""


@dataclass(frozen=True, slots=True)
class CodeReady:
    """The code streamed since the last call is complete: run it."""

    signature: bytes | None = None
    """Opaque data the provider attached to the call (Gemini's thought signature), sent back with it."""


@dataclass(frozen=True, slots=True)
class FunctionCallRequested:
    """The model called one of the client's function tools: the response ends with that call."""

    call_id: str
    name: str
    arguments: str
    signature: bytes | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens the model's provider counted for this turn."""

    input_tokens: int
    output_tokens: int


@dataclass(frozen=True, slots=True)
class Stopped:
    """The provider cut the turn short: at its output token limit, or by its content filter.

    Code in a cut turn may be incomplete, so none of it runs; the response ends as incomplete.
    """

    reason: Literal["max_output_tokens", "content_filter"]


ModelEvent = TextDelta | CodeDelta | CodeReady | FunctionCallRequested | Usage | Stopped


@dataclass(frozen=True, slots=True)
class FunctionTool:
    name: str
    description: str | None
    parameters: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Sampling:
    """The request's sampling settings, passed on where the upstream API takes them (None: its default)."""

    temperature: float | None = None
    top_p: float | None = None


@dataclass(frozen=True, slots=True)
class ToolChoice:
    """Which tools the model may, must or must not call in a turn (each upstream API in its own form)."""

    mode: Literal["auto", "none", "required"] = "auto"
    names: tuple[str, ...] = ()
    """The tools it may choose from (all when empty); `required` with one name forces that tool. The python
    tool is named `python` here, whatever the client called it."""


@dataclass(frozen=True, slots=True)
class OutputFormat:
    """Structured output: the model's answer is JSON, and matches `schema` when there is one."""

    schema: dict[str, Any] | None = None
    name: str = "response"
    description: str | None = None
    strict: bool | None = None


@dataclass(frozen=True, slots=True)
class Turn:
    instructions: str | None
    items: Sequence[Item]
    memory_limit: str | None = "1g"
    """The container's memory, which the model is told about; None: no python tool this response."""
    functions: Sequence[FunctionTool] = ()
    """The client's own function tools, offered to the model beside the python tool."""
    max_output_tokens: int | None = None
    """What is left of the request's `max_output_tokens` for this turn (APIs that need one default it)."""
    sampling: Sampling = Sampling()
    tool_choice: ToolChoice = ToolChoice()
    output_format: OutputFormat | None = None
    shell: bool = False
    """A bash tool beside python, running in the same sandbox (a door whose hosted tool runs commands)."""

    @property
    def code(self) -> bool:
        """Whether the model has the python tool."""
        return self.memory_limit is not None


ERROR_CODE_HEADER = "x-kernelgate-error"
"""Set on answers kernelgate makes itself in place of an upstream's (a cassette's miss), naming the error."""


class ModelError(GatewayError):
    """The model's provider failed (after its retries): the response ends as failed with this message."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        self.status = status
        self.code = code
        """kernelgate's own code for the failure (`cassette_miss`), else None: the status names it."""
        super().__init__(message)

    # The three ways an upstream fails, worded alike whichever SDK reported them.
    @classmethod
    def failed(cls, status: int, detail: object, response: Any = None) -> ModelError:
        """An error status; `response` (the SDK's) may carry kernelgate's own code in ERROR_CODE_HEADER."""
        headers = getattr(response, "headers", None) or {}
        return cls(f"The upstream model failed with {status}: {detail}", status, headers.get(ERROR_CODE_HEADER))

    @classmethod
    def unreachable(cls, detail: object, timed_out: bool) -> ModelError:
        return cls(f"The upstream model could not be reached: {detail}", 504 if timed_out else 502)

    @classmethod
    def unreadable(cls, detail: object) -> ModelError:
        return cls(f"The upstream model sent something kernelgate cannot read: {detail}", 502)


class Model(Protocol):
    name: str

    def respond(self, turn: Turn) -> AsyncIterator[ModelEvent]: ...
