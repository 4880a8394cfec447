"""What a fake upstream is told to answer, and what it saw, in terms common to all four APIs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

Api = Literal["chat", "responses", "anthropic", "gemini"]
APIS: tuple[Api, ...] = ("chat", "responses", "anthropic", "gemini")


def path_for(api: Api, *, streamed: bool, model: str = "m") -> str:
    """The URL path a request of this API asks for (without the query: Gemini's stream adds `alt=sse`)."""
    if api == "gemini":
        return f"/v1beta/models/{model}:{'streamGenerateContent' if streamed else 'generateContent'}"
    return {"chat": "/v1/chat/completions", "responses": "/v1/responses", "anthropic": "/v1/messages"}[api]


@dataclass
class Reply:
    """One scripted answer: text, then a python call or a client function call; or an HTTP error, or silence."""

    code: str | None = None
    text: str | None = None
    status: int | None = None
    hang: float | None = None
    function: tuple[str, str] | None = None
    """A call of a client function tool: (name, JSON arguments)."""
    garbage: bool = False
    """Answer with a stream that is not the API's events."""
    pieces: int = 4
    cut: bool = False
    """The answer stops at the output token limit; a call's arguments stop halfway."""
    refused: bool = False
    """The answer stops for the provider's safety reasons (a refusal, a content filter)."""
    parallel: tuple[str, ...] = ()
    """More python calls beside `code` in the same answer (Gemini, which cannot be told not to)."""

    def call(self) -> tuple[str, str] | None:
        """The call this reply makes, as (tool name, JSON arguments), if any."""
        if self.function is not None:
            return self.function
        if self.code is not None:
            return "python", json.dumps({"code": self.code})
        return None

    def arguments_sent(self) -> str:
        """The call's arguments as far as they are sent: half of them when the answer is cut."""
        call = self.call()
        assert call is not None
        return call[1][: len(call[1]) // 2] if self.cut else call[1]


@dataclass
class Seen:
    """One request to the fake, read into terms every API shares, beside its raw body."""

    api: str
    model: str
    body: dict[str, Any]
    tools: list[str] = field(default_factory=list)
    """The names of the tools offered, in order."""
    results: list[str] = field(default_factory=list)
    """The text of every tool result sent back (python's and the client functions'), in order."""
    images: int = 0
    """Images sent to the model."""
    system: str | None = None
    max_tokens: int | None = None
    sampling: tuple[float | None, float | None] = (None, None)
    """(temperature, top_p) as sent."""
    path: str = ""
    """The URL's path and query, as requested."""
    headers: dict[str, str] = field(default_factory=dict)


def split(text: str, pieces: int) -> list[str]:
    size = max(1, -(-len(text) // pieces))
    return [text[i : i + size] for i in range(0, len(text), size)]


def sse(data: dict[str, Any], event: str | None = None) -> str:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n"
