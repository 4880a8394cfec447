"""A finished response as the core keeps it: what came before, what was asked, what the model made, how it ended.

Stored in no wire format's shape. The wire format that made a response renders it again from this (its
request parameters, which only it reads, are kept beside the neutral fields); a follow-up in any wire
format continues from `conversation`.
"""

from __future__ import annotations

import enum

from pydantic import BaseModel, ConfigDict, JsonValue

from .items import Item

__all__ = ["Failure", "Outcome", "StoredResponse"]


class Outcome(enum.StrEnum):
    IN_PROGRESS = "in_progress"
    """Still running (a background response): `output` holds what is finished so far."""
    CANCELLED = "cancelled"
    """A background response cancelled by its client; its running code was interrupted."""
    COMPLETED = "completed"
    INCOMPLETE = "incomplete"
    """Cut short: the model's output limit or content filter, or the tool loop's limit."""
    FAILED = "failed"
    """The model's provider failed, or the gateway did; `error` says which."""


class Failure(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: str
    """In the error vocabulary of the wire format that rendered it (OpenAI's: `server_error`, ...)."""
    message: str


class StoredResponse(BaseModel):
    model_config = ConfigDict(frozen=True, ser_json_bytes="base64", val_json_bytes="base64")

    id: str
    wire: str
    """The wire format that made it (`openai`); only it renders it."""
    model: str
    created_at: int
    completed_at: int | None
    status: Outcome
    incomplete_reason: str | None = None
    error: Failure | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    container_id: str | None
    """Where its code ran; None when it had no code interpreter."""
    history: tuple[Item, ...] = ()
    """The conversation before this request: the previous response's, when it continued one."""
    input: tuple[Item, ...] = ()
    """This request's own items."""
    output: tuple[Item, ...] = ()
    """What the model produced (finished items only)."""
    parameters: dict[str, JsonValue] = {}
    """The request's other parameters in its wire format's terms, echoed when that format renders it."""
    background: bool = False
    """Run detached from the request that made it: polled, and cancellable."""

    @property
    def conversation(self) -> list[Item]:
        """What a follow-up continues from."""
        return [*self.history, *self.input, *self.output]
