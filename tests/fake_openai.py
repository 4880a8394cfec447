"""The fake's OpenAI side: Chat Completions and the Responses API, streamed or whole.

Every request is checked against the openai SDK's request types (nested fields included, unknown
fields refused, as the API refuses them), its key against the one the fake was given, and against the
rules the API enforces on a conversation: each tool result answers a call made before it, and every
call is answered. The Responses API is also held to `store: false`: kernelgate keeps the conversation
itself, so nothing it sends may stay on the upstream.
"""

from __future__ import annotations

import typing
from collections.abc import AsyncIterator
from typing import Any

from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.chat.completion_create_params import (
    CompletionCreateParamsNonStreaming,
    CompletionCreateParamsStreaming,
)
from openai.types.responses import Response, ResponseStreamEvent
from openai.types.responses.response_create_params import (
    ResponseCreateParamsNonStreaming,
    ResponseCreateParamsStreaming,
)

from .fake_script import Reply, Seen, split, sse
from .fake_shapes import check_shape

_USAGE = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
_CHAT = {True: CompletionCreateParamsStreaming, False: CompletionCreateParamsNonStreaming}
_RESPONSES = {True: ResponseCreateParamsStreaming, False: ResponseCreateParamsNonStreaming}


def error(status: int) -> dict[str, Any]:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return {"error": {"message": f"scripted {status}", "type": kind, "param": None, "code": None}}


def _check_key(headers: dict[str, str], key: str | None) -> None:
    sent = headers.get("authorization", "")
    assert sent.startswith("Bearer "), f"no bearer key: {sent!r}"
    assert key is None or sent == f"Bearer {key}", f"the key sent is not the upstream's: {sent!r}"


def check_chat(body: dict[str, Any], headers: dict[str, str], key: str | None) -> None:
    """Raise unless Chat Completions would take the request."""
    _check_key(headers, key)
    check_shape(body, _CHAT[bool(body.get("stream"))])
    assert "stream_options" not in body or body.get("stream"), "stream_options without stream"
    assert "parallel_tool_calls" not in body or body.get("tools"), "parallel_tool_calls without tools"
    waiting: list[str] = []  # the last assistant message's calls not answered yet
    for index, message in enumerate(body["messages"]):
        if message["role"] == "tool":
            assert message["tool_call_id"] in waiting, f"messages[{index}] answers no call awaiting it: {waiting}"
            waiting.remove(message["tool_call_id"])
            continue
        assert not waiting, f"messages[{index}] comes before the tool calls {waiting} were answered"
        if message["role"] == "assistant":
            waiting = [call["id"] for call in message.get("tool_calls") or []]
    assert not waiting, f"the tool calls {waiting} are never answered"


def _parts(entries: list[dict[str, Any]], kind: str) -> int:
    """How many content parts of this type the messages or input items hold."""
    contents = [entry["content"] for entry in entries if isinstance(entry.get("content"), list)]
    return sum(1 for content in contents for part in content if part.get("type") == kind)


def seen_chat(body: dict[str, Any]) -> Seen:
    messages = body["messages"]
    return Seen(
        api="chat",
        model=body["model"],
        body=body,
        tools=[tool["function"]["name"] for tool in body.get("tools", [])],
        results=[m["content"] for m in messages if m["role"] == "tool"],
        images=_parts(messages, "image_url"),
        system=next((m["content"] for m in messages if m["role"] == "system"), None),
        max_tokens=body.get("max_tokens"),
        sampling=(body.get("temperature"), body.get("top_p")),
    )


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
    ChatCompletionChunk.model_validate(body)
    return sse(body)


def _finish(reply: Reply) -> str:
    return "content_filter" if reply.refused else "length" if reply.cut else "tool_calls" if reply.call() else "stop"


async def chat_chunks(reply: Reply) -> AsyncIterator[str]:
    yield _chunk({"role": "assistant", "content": ""})
    for piece in split(reply.text or "", reply.pieces):
        yield _chunk({"content": piece})
    call = reply.call()
    if call is not None:
        start = {"index": 0, "id": "call_1", "type": "function", "function": {"name": call[0], "arguments": ""}}
        yield _chunk({"tool_calls": [start]})
        for piece in split(reply.arguments_sent(), reply.pieces):
            yield _chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
    yield _chunk({}, _finish(reply))
    yield _chunk({}, usage=_USAGE)
    yield "data: [DONE]\n\n"


def chat_completion(reply: Reply) -> dict[str, Any]:
    """A whole (non-streamed) chat completion for one reply."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.text}
    call = reply.call()
    if call is not None:
        message["tool_calls"] = [
            {"id": "call_1", "type": "function", "function": {"name": call[0], "arguments": reply.arguments_sent()}}
        ]
    whole = {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": "fake",
        "choices": [{"index": 0, "message": message, "finish_reason": _finish(reply)}],
        "usage": _USAGE,
    }
    ChatCompletion.model_validate(whole)
    return whole


def check_responses(body: dict[str, Any], headers: dict[str, str], key: str | None) -> None:
    """Raise unless the Responses API would take the request, and it leaves nothing stored upstream."""
    _check_key(headers, key)
    check_shape(body, _RESPONSES[bool(body.get("stream"))])
    assert body.get("store") is False, f"store is {body.get('store')!r}, not false: the upstream would keep it"
    assert "previous_response_id" not in body, "previous_response_id with store: false"
    assert "parallel_tool_calls" not in body or body.get("tools"), "parallel_tool_calls without tools"
    calls: set[str] = set()
    for index, item in enumerate(body["input"]):
        if item.get("type") == "function_call":
            calls.add(item["call_id"])
        elif item.get("type") == "function_call_output":
            assert item["call_id"] in calls, f"input[{index}] answers {item['call_id']}, which no call before it made"
            calls.remove(item["call_id"])
    assert not calls, f"No tool output found for function calls {sorted(calls)}."


def seen_responses(body: dict[str, Any]) -> Seen:
    items = body["input"]
    return Seen(
        api="responses",
        model=body["model"],
        body=body,
        tools=[tool["name"] for tool in body.get("tools", [])],
        results=[i["output"] for i in items if i.get("type") == "function_call_output"],
        images=_parts(items, "input_image"),
        system=body.get("instructions"),
        max_tokens=body.get("max_output_tokens"),
        sampling=(body.get("temperature"), body.get("top_p")),
    )


# Each stream event's model by its `type`, so that a bad event names its own errors.
_EVENTS = {
    typing.get_args(model.model_fields["type"].annotation)[0]: model
    for model in typing.get_args(typing.get_args(ResponseStreamEvent)[0])
}
_RESPONSE_USAGE = {
    "input_tokens": 10,
    "output_tokens": 5,
    "total_tokens": 15,
    "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
    "output_tokens_details": {"reasoning_tokens": 0},
}


class _Events:
    def __init__(self) -> None:
        self.number = -1

    def __call__(self, kind: str, **fields: Any) -> str:
        self.number += 1
        data = {"type": kind, "sequence_number": self.number, **fields}
        _EVENTS[kind].model_validate(data)
        return sse(data, kind)


def _response(model: str, output: list[dict[str, Any]], reply: Reply | None) -> dict[str, Any]:
    """A Response object: in progress (no reply yet), or as the reply ends it."""
    response: dict[str, Any] = {
        "id": "resp_fake",
        "object": "response",
        "created_at": 0,
        "model": model,
        "output": output,
        "status": "in_progress",
        "tools": [],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
    }
    if reply is None:
        return response
    reason = "content_filter" if reply.refused else "max_output_tokens" if reply.cut else None
    if reason is not None:
        response |= {"status": "incomplete", "incomplete_details": {"reason": reason}}
    else:
        response["status"] = "completed"
    return response | {"usage": _RESPONSE_USAGE}


def _message_item(reply: Reply, status: str = "completed") -> dict[str, Any]:
    content = [{"type": "output_text", "text": reply.text or "", "annotations": []}] if status == "completed" else []
    return {"type": "message", "id": "msg_1", "role": "assistant", "status": status, "content": content}


def _call_item(reply: Reply, status: str = "completed") -> dict[str, Any]:
    call = reply.call()
    assert call is not None
    arguments = reply.arguments_sent() if status == "completed" else ""
    item = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": call[0], "arguments": arguments}
    return item | {"status": status}


def response(model: str, reply: Reply) -> dict[str, Any]:
    """The whole Response for one reply (stream: false); a cut call is left out, as it never finished."""
    output = [_message_item(reply)] if reply.text is not None else []
    if reply.call() is not None and not reply.cut:
        output.append(_call_item(reply))
    whole = _response(model, output, reply)
    Response.model_validate(whole)
    return whole


async def response_events(model: str, reply: Reply) -> AsyncIterator[str]:
    """The Responses API's stream for one reply: a message and/or a function call, then the end with usage."""
    event = _Events()
    yield event("response.created", response=_response(model, [], None))
    index = 0
    if reply.text is not None:
        for chunk in _message_events(event, reply, index):
            yield chunk
        index += 1
    if reply.call() is not None:
        item = _call_item(reply, "in_progress")
        yield event("response.output_item.added", output_index=index, item=item)
        for piece in split(reply.arguments_sent(), reply.pieces):
            yield event("response.function_call_arguments.delta", item_id="fc_1", output_index=index, delta=piece)
        if not reply.cut:
            yield event("response.output_item.done", output_index=index, item=_call_item(reply))
    ended = _response(model, [], reply)
    yield event("response.incomplete" if ended["status"] == "incomplete" else "response.completed", response=ended)


def _message_events(event: _Events, reply: Reply, index: int) -> list[str]:
    item = _message_item(reply, "in_progress")
    events = [event("response.output_item.added", output_index=index, item=item)]
    for piece in split(reply.text or "", reply.pieces):
        delta = {"item_id": "msg_1", "output_index": index, "content_index": 0, "delta": piece, "logprobs": []}
        events.append(event("response.output_text.delta", **delta))
    events.append(event("response.output_item.done", output_index=index, item=_message_item(reply)))
    return events
