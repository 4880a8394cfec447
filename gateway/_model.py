"""What the tool loop needs of a model: given the conversation so far, stream one turn.

A turn is text deltas (the answer: the loop ends), or code deltas closed by `CodeReady` (the loop
runs the code, appends the call with its result, and asks the model again).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ._conversation import Item

__all__ = [
    "CodeDelta",
    "CodeReady",
    "FunctionCallRequested",
    "FunctionTool",
    "Model",
    "ModelError",
    "ModelEvent",
    "TextDelta",
    "Turn",
    "Usage",
]


@dataclass(frozen=True, slots=True)
class TextDelta:
    delta: str


@dataclass(frozen=True, slots=True)
class CodeDelta:
    delta: str


@dataclass(frozen=True, slots=True)
class CodeReady:
    """The code streamed since the last call is complete: run it."""


@dataclass(frozen=True, slots=True)
class FunctionCallRequested:
    """The model called one of the client's function tools: the response ends with that call."""

    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens the model's provider counted for this turn."""

    input_tokens: int
    output_tokens: int


ModelEvent = TextDelta | CodeDelta | CodeReady | FunctionCallRequested | Usage


@dataclass(frozen=True, slots=True)
class FunctionTool:
    name: str
    description: str | None
    parameters: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Turn:
    instructions: str | None
    items: Sequence[Item]
    memory_limit: str = "1g"
    """The container's memory, which the model is told about."""
    functions: Sequence[FunctionTool] = ()
    """The client's own function tools, offered to the model beside the python tool."""


class ModelError(Exception):
    """The model's provider failed (after its retries): the response ends as failed with this message."""

    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class Model(Protocol):
    name: str

    def respond(self, turn: Turn) -> AsyncIterator[ModelEvent]: ...
