"""The fake's Anthropic side: the Messages API, streamed or whole, checked against the anthropic SDK's types.

Every request is checked as `MessageCreateParams` (each nested block included, unknown fields refused at
every level), its key against the fake's, and against the API's rules on a conversation: roles
alternate, and each `tool_use` is answered by a `tool_result` with its id first thing in the next user
message. Every event or message the fake sends is validated as the SDK's `RawMessageStreamEvent` /
`Message`, so a shape the real API would refuse, or the SDK could not read, fails the test here.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import anthropic.types
from anthropic.types.message_create_params import MessageCreateParamsNonStreaming, MessageCreateParamsStreaming
from pydantic import TypeAdapter

from .fake_script import Reply, Seen, split, sse
from .fake_shapes import check_shape

_EVENT = TypeAdapter(anthropic.types.RawMessageStreamEvent)
_REQUEST = {True: MessageCreateParamsStreaming, False: MessageCreateParamsNonStreaming}


def check_request(body: dict[str, Any], headers: dict[str, str], key: str | None) -> None:
    """Raise unless the request is one the Messages API takes, as the SDK's types describe it."""
    assert headers.get("x-api-key"), "no x-api-key header"
    assert key is None or headers["x-api-key"] == key, f"the key sent is not the upstream's: {headers['x-api-key']!r}"
    assert headers.get("anthropic-version"), "no anthropic-version header"
    check_shape(body, _REQUEST[bool(body.get("stream"))])
    messages = body["messages"]
    roles = [message["role"] for message in messages]
    assert all(a != b for a, b in itertools.pairwise(roles)), f"roles do not alternate: {roles}"
    for index, message in enumerate(messages):
        results = _ids(message, "tool_result", "tool_use_id")
        # the API wants a user message's tool results before anything else
        assert _ids(message, "*")[: len(results)] == ["tool_result"] * len(results), f"messages[{index}]"
        calls = _ids(messages[index - 1], "tool_use", "id") if index else []
        assert sorted(results) == sorted(calls), f"messages[{index}] answers {results}, not {calls}"
    assert not _ids(messages[-1], "tool_use", "id") or messages[-1]["role"] == "user", "a tool_use left unanswered"


def _ids(message: dict[str, Any], kind: str, field: str = "type") -> list[str]:
    """The `field` of each block of this kind (`*`: every block) in a message, in order."""
    blocks = message["content"] if isinstance(message["content"], list) else []
    return [block[field] for block in blocks if kind in ("*", block["type"])]


def error(status: int) -> dict[str, Any]:
    kind = "invalid_request_error" if status < 500 else "api_error"
    return {"type": "error", "error": {"type": kind, "message": f"scripted {status}"}}


def seen(body: dict[str, Any]) -> Seen:
    results, images = [], 0
    for message in body["messages"]:
        for block in message["content"] if isinstance(message["content"], list) else []:
            images += block["type"] == "image"  # a user's own image
            if block["type"] != "tool_result":
                continue
            content = block["content"]
            if isinstance(content, str):
                results.append(content)
                continue
            results.append("".join(part["text"] for part in content if part["type"] == "text"))
            images += sum(1 for part in content if part["type"] == "image")
    return Seen(
        api="anthropic",
        model=body["model"],
        body=body,
        tools=[tool["name"] for tool in body.get("tools", [])],
        results=results,
        images=images,
        system=body.get("system"),
        max_tokens=body["max_tokens"],
    )


def _stop_reason(reply: Reply) -> str:
    return "refusal" if reply.refused else "max_tokens" if reply.cut else "tool_use" if reply.call() else "end_turn"


def _message(model: str, content: list[dict[str, Any]], stop_reason: str | None) -> dict[str, Any]:
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 7, "cache_read_input_tokens": 3, "output_tokens": 1},
    }


def _event(data: dict[str, Any]) -> str:
    _EVENT.validate_python(data)
    return sse(data, data["type"])


async def events(model: str, reply: Reply) -> AsyncIterator[str]:
    yield _event({"type": "message_start", "message": _message(model, [], None)})
    index = 0
    if reply.text is not None:
        yield _event({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}})
        for piece in split(reply.text, reply.pieces):
            delta = {"type": "text_delta", "text": piece}
            yield _event({"type": "content_block_delta", "index": index, "delta": delta})
        yield _event({"type": "content_block_stop", "index": index})
        index += 1
    call = reply.call()
    if call is not None:
        block = {"type": "tool_use", "id": "toolu_fake1", "name": call[0], "input": {}}
        yield _event({"type": "content_block_start", "index": index, "content_block": block})
        for piece in split(reply.arguments_sent(), reply.pieces):
            delta = {"type": "input_json_delta", "partial_json": piece}
            yield _event({"type": "content_block_delta", "index": index, "delta": delta})
        yield _event({"type": "content_block_stop", "index": index})
    end = {"stop_reason": _stop_reason(reply), "stop_sequence": None}
    yield _event({"type": "message_delta", "delta": end, "usage": {"output_tokens": 5}})
    yield _event({"type": "message_stop"})


def message(model: str, reply: Reply) -> dict[str, Any]:
    """A whole (non-streamed) message for one reply."""
    content: list[dict[str, Any]] = []
    if reply.text is not None:
        content.append({"type": "text", "text": reply.text})
    call = reply.call()
    if call is not None and not reply.cut:
        content.append({"type": "tool_use", "id": "toolu_fake1", "name": call[0], "input": json.loads(call[1])})
    whole = _message(model, content, _stop_reason(reply))
    whole["usage"]["output_tokens"] = 5
    anthropic.types.Message.model_validate(whole)
    return whole
