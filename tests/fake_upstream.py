"""A fake upstream model speaking all four APIs kernelgate can ask, scripted by each test.

Chat Completions and the Responses API (`/v1/...`), Anthropic's Messages API (`/v1/messages`) and the
Gemini API (`/v1beta/models/{model}:generateContent` and `:streamGenerateContent`). It is our own seam:
kernelgate talks to it over real HTTP on loopback exactly as to the real servers. Each request is
checked against the API's shapes (the official SDKs' types for Anthropic and Gemini) and read into a
`Seen`, so a test can assert the same things whichever API served it.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from gateway.testing import run_app

from . import fake_anthropic, fake_gemini, fake_openai
from .fake_script import Reply, Seen

__all__ = ["APIS", "FakeUpstream", "Reply", "Seen", "fake_upstream"]

APIS = ("chat", "responses", "anthropic", "gemini")
_GARBAGE = Response("data: {not json at all\n\n", media_type="text/event-stream")


@dataclass
class FakeUpstream:
    script: list[Reply] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    """The raw request bodies, in order."""
    seen: list[Seen] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """Requests that broke the API's rules: each was answered 400, and the test should fail on it."""
    root: str = ""

    def url_for(self, api: str) -> str:
        """The base URL a provider of this API takes: OpenAI's SDK wants the /v1, the others add their own."""
        return f"{self.root}/v1" if api in ("chat", "responses") else self.root

    def _next(self) -> Reply:
        return self.script.pop(0) if self.script else Reply(text="(script exhausted)")

    async def _take(self, request: Request, check: Callable[[dict[str, Any], dict[str, str]], None]) -> Any:
        body = await request.json()
        self.requests.append(body)
        try:
            check(body, dict(request.headers))
        except Exception as exc:  # noqa: BLE001  # any broken rule is reported to the test, not raised here
            self.problems.append("".join(traceback.format_exception_only(exc)))
            return None
        return body

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> Response:
            body = await self._take(request, lambda body, headers: None)
            self.seen.append(fake_openai.seen_chat(body))
            reply = await self._hold(self._next())
            if reply.status is not None:
                return JSONResponse(fake_openai.chat_error(reply.status), status_code=reply.status)
            if not body.get("stream"):
                return JSONResponse(fake_openai.chat_completion(reply))
            if reply.garbage:
                return _GARBAGE
            return StreamingResponse(fake_openai.chat_chunks(reply), media_type="text/event-stream")

        @app.post("/v1/responses")
        async def responses(request: Request) -> Response:
            body = await self._take(request, lambda body, headers: None)
            self.seen.append(fake_openai.seen_responses(body))
            reply = await self._hold(self._next())
            if reply.status is not None:
                return JSONResponse(fake_openai.chat_error(reply.status), status_code=reply.status)
            if reply.garbage:
                return _GARBAGE
            events = fake_openai.response_events(body["model"], reply)
            return StreamingResponse(events, media_type="text/event-stream")

        @app.post("/v1/messages")
        async def messages(request: Request) -> Response:
            body = await self._take(request, fake_anthropic.check_request)
            if body is None:
                return JSONResponse(fake_anthropic.error(400), status_code=400)
            self.seen.append(fake_anthropic.seen(body))
            reply = await self._hold(self._next())
            if reply.status is not None:
                return JSONResponse(fake_anthropic.error(reply.status), status_code=reply.status)
            if not body.get("stream"):
                return JSONResponse(fake_anthropic.message(body["model"], reply))
            if reply.garbage:
                return _GARBAGE
            return StreamingResponse(fake_anthropic.events(body["model"], reply), media_type="text/event-stream")

        @app.post("/v1beta/models/{target}")
        async def gemini(target: str, request: Request) -> Response:
            model, _, method = target.partition(":")
            body = await self._take(request, fake_gemini.check_request)
            if body is None:
                return JSONResponse(fake_gemini.error(400), status_code=400)
            self.seen.append(fake_gemini.seen(model, body))
            reply = await self._hold(self._next())
            number = len(self.seen)
            if reply.status is not None:
                return JSONResponse(fake_gemini.error(reply.status), status_code=reply.status)
            if method == "generateContent":
                return JSONResponse(fake_gemini.whole(model, reply, number))
            assert method == "streamGenerateContent", method
            assert request.query_params.get("alt") == "sse"
            if reply.garbage:
                return _GARBAGE
            return StreamingResponse(fake_gemini.stream(model, reply, number), media_type="text/event-stream")

        return app

    async def _hold(self, reply: Reply) -> Reply:
        if reply.hang is not None:
            await asyncio.sleep(reply.hang)
        return reply


@contextmanager
def fake_upstream() -> Iterator[tuple[FakeUpstream, str]]:
    """The fake on a loopback port, and its base URL for OpenAI's APIs (`fake.url_for(api)` for any)."""
    upstream = FakeUpstream()
    with run_app(upstream.app()) as base_url:
        upstream.root = base_url
        yield upstream, f"{base_url}/v1"
    assert not upstream.problems, "requests broke the upstream API's rules:\n" + "\n".join(upstream.problems)
