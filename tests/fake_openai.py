"""The fake's OpenAI side: Chat Completions (streamed or whole) and the Responses API (streamed)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from .fake_script import Reply, Seen, split, sse

_USAGE = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}


def chat_error(status: int) -> dict[str, Any]:
    return {"error": {"message": f"scripted {status}", "type": "server_error", "param": None, "code": None}}


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
    return sse(body)


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
    yield _chunk({}, "length" if reply.cut else "tool_calls" if call else "stop")
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
    finish = "length" if reply.cut else "tool_calls" if call else "stop"
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": "fake",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": _USAGE,
    }


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


class _Events:
    def __init__(self) -> None:
        self.number = -1

    def __call__(self, kind: str, **fields: Any) -> str:
        self.number += 1
        return sse({"type": kind, "sequence_number": self.number, **fields}, kind)


async def response_events(model: str, reply: Reply) -> AsyncIterator[str]:
    """The Responses API's stream for one reply: a message and/or a function call, then the end with usage."""
    event = _Events()
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
    yield event("response.created", response=response)
    index = 0
    if reply.text is not None:
        for chunk in _message_events(event, reply, index):
            yield chunk
        index += 1
    call = reply.call()
    if call is not None:
        item = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": call[0], "arguments": ""}
        yield event("response.output_item.added", output_index=index, item={**item, "status": "in_progress"})
        for piece in split(reply.arguments_sent(), reply.pieces):
            yield event("response.function_call_arguments.delta", item_id="fc_1", output_index=index, delta=piece)
        if not reply.cut:
            done = {**item, "arguments": reply.arguments_sent(), "status": "completed"}
            yield event("response.output_item.done", output_index=index, item=done)
    usage = {
        "input_tokens": 10,
        "output_tokens": 5,
        "total_tokens": 15,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens_details": {"reasoning_tokens": 0},
    }
    if reply.cut:
        ending = {"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}}
        yield event("response.incomplete", response={**response, **ending, "usage": usage})
    else:
        yield event("response.completed", response={**response, "status": "completed", "usage": usage})


def _message_events(event: _Events, reply: Reply, index: int) -> list[str]:
    text = reply.text or ""
    item = {"type": "message", "id": "msg_1", "role": "assistant", "status": "in_progress", "content": []}
    events = [event("response.output_item.added", output_index=index, item=item)]
    for piece in split(text, reply.pieces):
        events.append(
            event(
                "response.output_text.delta",
                item_id="msg_1",
                output_index=index,
                content_index=0,
                delta=piece,
                logprobs=[],
            )
        )
    content = [{"type": "output_text", "text": text, "annotations": []}]
    done = {**item, "status": "completed", "content": content}
    events.append(event("response.output_item.done", output_index=index, item=done))
    return events
