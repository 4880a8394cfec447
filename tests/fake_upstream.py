"""A fake upstream model speaking all four APIs kernelgate can ask, scripted by each test.

Chat Completions and the Responses API (`/v1/...`), Anthropic's Messages API (`/v1/messages`) and the
Gemini API (`/v1beta/models/{model}:generateContent` and `:streamGenerateContent`). It is our own seam:
kernelgate talks to it over real HTTP on loopback exactly as to the real servers. Every request is
checked against the API's contract: the official SDK's request types with nested fields and unknown
ones refused, the API key the fake was given, and the API's rules on a conversation (each tool result
answers a call made before it). A request that breaks one is answered 400 and noted in `problems`,
which fails the test. Each request is read into a `Seen` with its path and headers, so a test can
assert the same things whichever API served it.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from gateway.testing import run_app

from . import fake_anthropic, fake_gemini, fake_openai
from .fake_script import APIS, Api, Reply, Seen

__all__ = ["APIS", "Api", "FakeUpstream", "Reply", "Seen", "fake_upstream"]

Check = Callable[[dict[str, Any], dict[str, str], str | None], None]
_GARBAGE = Response("data: {not json at all\n\n", media_type="text/event-stream")


@dataclass
class FakeUpstream:
    script: list[Reply] = field(default_factory=list)
    key: str | None = "test-key"
    """The API key every request must carry (None: any, as a local server takes)."""
    requests: list[dict[str, Any]] = field(default_factory=list)
    """The raw request bodies, in order."""
    seen: list[Seen] = field(default_factory=list)
    """Each request that kept the API's rules, read into common terms with its path and headers."""
    problems: list[str] = field(default_factory=list)
    """Requests that broke the API's rules: each was answered 400, and the test should fail on it."""
    root: str = ""

    def url_for(self, api: str) -> str:
        """The base URL a provider of this API takes: OpenAI's SDK wants the /v1, the others add their own."""
        return f"{self.root}/v1" if api in ("chat", "responses") else self.root

    def reset(self) -> None:
        self.script, self.requests, self.seen, self.problems = [], [], [], []

    def _next(self) -> Reply:
        return self.script.pop(0) if self.script else Reply(text="(script exhausted)")

    async def _take(self, request: Request, check: Check, read: Callable[[dict[str, Any]], Seen]) -> Reply | None:
        """Record and check a request; the scripted reply, or None when it broke the API's rules."""
        body = await request.json()
        self.requests.append(body)
        try:
            check(body, dict(request.headers), self.key)
            seen = read(body)
        except Exception as exc:  # noqa: BLE001  # any broken rule is reported to the test, not raised here
            self.problems.append(f"{request.url.path}: " + "".join(traceback.format_exception_only(exc)))
            return None
        seen.path = f"{request.url.path}?{request.url.query}" if request.url.query else request.url.path
        seen.headers = dict(request.headers)
        self.seen.append(seen)
        return await self._hold(self._next())

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> Response:
            reply = await self._take(request, fake_openai.check_chat, fake_openai.seen_chat)
            return _answer(
                reply,
                fake_openai.error,
                streamed=bool(self.seen[-1].body.get("stream")) if reply else False,
                whole=fake_openai.chat_completion,
                events=fake_openai.chat_chunks,
            )

        @app.post("/v1/responses")
        async def responses(request: Request) -> Response:
            reply = await self._take(request, fake_openai.check_responses, fake_openai.seen_responses)
            model = self.seen[-1].model if reply else ""
            return _answer(
                reply,
                fake_openai.error,
                streamed=bool(self.seen[-1].body.get("stream")) if reply else False,
                whole=lambda reply: fake_openai.response(model, reply),
                events=lambda reply: fake_openai.response_events(model, reply),
            )

        @app.post("/v1/messages")
        async def messages(request: Request) -> Response:
            reply = await self._take(request, fake_anthropic.check_request, fake_anthropic.seen)
            model = self.seen[-1].model if reply else ""
            return _answer(
                reply,
                fake_anthropic.error,
                streamed=bool(self.seen[-1].body.get("stream")) if reply else False,
                whole=lambda reply: fake_anthropic.message(model, reply),
                events=lambda reply: fake_anthropic.events(model, reply),
            )

        @app.post("/v1beta/models/{target}")
        async def gemini(target: str, request: Request) -> Response:
            model, _, method = target.partition(":")
            reply = await self._take(request, _gemini_check(method, request), lambda b: fake_gemini.seen(model, b))
            number = len(self.seen)
            return _answer(
                reply,
                fake_gemini.error,
                streamed=method == "streamGenerateContent",
                whole=lambda reply: fake_gemini.whole(model, reply, number),
                events=lambda reply: fake_gemini.stream(model, reply, number),
            )

        return app

    async def _hold(self, reply: Reply) -> Reply:
        if reply.hang is not None:
            await asyncio.sleep(reply.hang)
        return reply


def _answer(
    reply: Reply | None,
    error: Callable[[int], dict[str, Any]],
    *,
    streamed: bool,
    whole: Callable[[Reply], dict[str, Any]],
    events: Callable[[Reply], AsyncIterator[str]],
) -> Response:
    """The API's answer to a request: its error body (400 when the request broke a rule, or the scripted
    status), the whole answer, or its stream (garbage when the script says so)."""
    status = 400 if reply is None else reply.status
    if reply is None or status is not None:
        return JSONResponse(error(status or 400), status_code=status or 400)
    if not streamed:
        return JSONResponse(whole(reply))
    if reply.garbage:
        return _GARBAGE
    return StreamingResponse(events(reply), media_type="text/event-stream")


def _gemini_check(method: str, request: Request) -> Check:
    """Gemini's checks, and the method's: streaming answers are asked for as SSE."""

    def check(body: dict[str, Any], headers: dict[str, str], key: str | None) -> None:
        assert method in ("generateContent", "streamGenerateContent"), f"no method {method!r}"
        if method == "streamGenerateContent":
            assert request.query_params.get("alt") == "sse", "a stream asked for without alt=sse"
        fake_gemini.check_request(body, headers, key)

    return check


@contextmanager
def fake_upstream(key: str | None = "test-key") -> Iterator[tuple[FakeUpstream, str]]:
    """The fake on a loopback port, and its base URL for OpenAI's APIs (`fake.url_for(api)` for any)."""
    upstream = FakeUpstream(key=key)
    with run_app(upstream.app()) as base_url:
        upstream.root = base_url
        yield upstream, f"{base_url}/v1"
    assert not upstream.problems, "requests broke the upstream API's rules:\n" + "\n".join(upstream.problems)
