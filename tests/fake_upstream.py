"""A fake upstream model speaking OpenAI's Chat Completions (streamed), scripted by each test.

It is our own seam: kernelgate talks to it over real HTTP on loopback exactly as to OpenAI or Ollama.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from gateway.testing import run_app


@dataclass
class Reply:
    """One scripted answer: code for the python tool, text, an HTTP error, or silence."""

    code: str | None = None
    text: str | None = None
    status: int | None = None
    hang: float | None = None
    function: tuple[str, str] | None = None
    """A call of a client function tool: (name, JSON arguments)."""
    garbage: bool = False
    """Answer with a stream that is not Chat Completions chunks."""
    pieces: int = 4


@dataclass
class FakeUpstream:
    script: list[Reply] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> Response:
            body = await request.json()
            self.requests.append(body)
            reply = self.script.pop(0) if self.script else Reply(text="(script exhausted)")
            if reply.hang is not None:
                await asyncio.sleep(reply.hang)
            if reply.status is not None:
                error = {
                    "error": {
                        "message": f"scripted {reply.status}",
                        "type": "server_error",
                        "param": None,
                        "code": None,
                    }
                }
                return JSONResponse(error, status_code=reply.status)
            if not body.get("stream"):
                return JSONResponse(_completion(reply))
            if reply.garbage:
                return Response("data: {not json at all\n\n", media_type="text/event-stream")
            return StreamingResponse(_chunks(reply), media_type="text/event-stream")

        @app.post("/v1/responses")
        async def responses(request: Request) -> Response:
            body = await request.json()
            self.requests.append(body)
            reply = self.script.pop(0) if self.script else Reply(text="(script exhausted)")
            return StreamingResponse(_response_events(body["model"], reply), media_type="text/event-stream")

        return app


def _split(text: str, pieces: int) -> list[str]:
    size = max(1, -(-len(text) // pieces))
    return [text[i : i + size] for i in range(0, len(text), size)]


def _chunk(delta: dict[str, Any], finish: str | None = None, usage: dict[str, int] | None = None) -> str:
    choices = [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}]
    body = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "fake",
        "choices": choices,
        "usage": usage,
    }
    return f"data: {json.dumps(body)}\n\n"


async def _chunks(reply: Reply) -> AsyncIterator[str]:
    if reply.code is not None or reply.function is not None:
        name, arguments = reply.function or ("python", json.dumps({"code": reply.code}))
        yield _chunk(
            {
                "role": "assistant",
                "tool_calls": [
                    {"index": 0, "id": "call_1", "type": "function", "function": {"name": name, "arguments": ""}}
                ],
            }
        )
        for piece in _split(arguments, reply.pieces):
            yield _chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
        yield _chunk({}, "tool_calls")
    else:
        yield _chunk({"role": "assistant", "content": ""})
        for piece in _split(reply.text or "", reply.pieces):
            yield _chunk({"content": piece})
        yield _chunk({}, "stop")
    yield _chunk({}, usage={"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15})
    yield "data: [DONE]\n\n"


def _completion(reply: Reply) -> dict[str, Any]:
    """A whole (non-streamed) chat completion for one reply."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.text}
    if reply.code is not None or reply.function is not None:
        name, arguments = reply.function or ("python", json.dumps({"code": reply.code}))
        message["tool_calls"] = [
            {"id": "call_1", "type": "function", "function": {"name": name, "arguments": arguments}}
        ]
    finish = "tool_calls" if "tool_calls" in message else "stop"
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": "fake",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


def _event(sequence: list[int], kind: str, **fields: Any) -> str:
    sequence[0] += 1
    return f"event: {kind}\ndata: {json.dumps({'type': kind, 'sequence_number': sequence[0], **fields})}\n\n"


async def _response_events(model: str, reply: Reply) -> AsyncIterator[str]:
    """The Responses API's stream for one reply: a function call or a message, then completed with usage."""
    sequence = [-1]
    response = {
        "id": "resp_fake",
        "object": "response",
        "created_at": 0,
        "model": model,
        "output": [],
        "status": "in_progress",
        "tools": [],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
    }
    yield _event(sequence, "response.created", response=response)
    if reply.code is not None or reply.function is not None:
        name, arguments = reply.function or ("python", json.dumps({"code": reply.code}))
        item = {
            "type": "function_call",
            "id": "fc_1",
            "call_id": "call_1",
            "name": name,
            "arguments": "",
            "status": "in_progress",
        }
        yield _event(sequence, "response.output_item.added", output_index=0, item=item)
        for piece in _split(arguments, reply.pieces):
            yield _event(
                sequence, "response.function_call_arguments.delta", item_id="fc_1", output_index=0, delta=piece
            )
        done = {**item, "arguments": arguments, "status": "completed"}
        yield _event(sequence, "response.output_item.done", output_index=0, item=done)
    else:
        item = {"type": "message", "id": "msg_1", "role": "assistant", "status": "in_progress", "content": []}
        yield _event(sequence, "response.output_item.added", output_index=0, item=item)
        for piece in _split(reply.text or "", reply.pieces):
            yield _event(
                sequence,
                "response.output_text.delta",
                item_id="msg_1",
                output_index=0,
                content_index=0,
                delta=piece,
                logprobs=[],
            )
        content = [{"type": "output_text", "text": reply.text or "", "annotations": []}]
        done = {**item, "status": "completed", "content": content}
        yield _event(sequence, "response.output_item.done", output_index=0, item=done)
    usage = {
        "input_tokens": 10,
        "output_tokens": 5,
        "total_tokens": 15,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens_details": {"reasoning_tokens": 0},
    }
    yield _event(sequence, "response.completed", response={**response, "status": "completed", "usage": usage})


@contextmanager
def fake_upstream() -> Iterator[tuple[FakeUpstream, str]]:
    upstream = FakeUpstream()
    with run_app(upstream.app()) as base_url:
        yield upstream, f"{base_url}/v1"
