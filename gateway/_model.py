"""What the tool loop needs of a model: given the conversation so far, stream one turn.

A turn is text deltas (the answer: the loop ends), or code deltas closed by `CodeReady` (the loop
runs the code, appends the call with its result, and asks the model again).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from ._conversation import Item

__all__ = ["CodeDelta", "CodeReady", "Model", "ModelEvent", "TextDelta", "Turn"]


@dataclass(frozen=True, slots=True)
class TextDelta:
    delta: str


@dataclass(frozen=True, slots=True)
class CodeDelta:
    delta: str


@dataclass(frozen=True, slots=True)
class CodeReady:
    """The code streamed since the last call is complete: run it."""


ModelEvent = TextDelta | CodeDelta | CodeReady


@dataclass(frozen=True, slots=True)
class Turn:
    instructions: str | None
    items: Sequence[Item]


class Model(Protocol):
    name: str

    def respond(self, turn: Turn) -> AsyncIterator[ModelEvent]: ...
