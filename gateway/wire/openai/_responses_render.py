"""Our conversation items and loop events as OpenAI's Response object and streaming events."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from ...conversation.items import (
    AssistantMessage,
    CodeCall,
    FunctionCall,
    FunctionOutput,
    Item,
    SystemMessage,
    data_url,
)
from ...conversation.loop import (
    CallCodeDelta,
    CallCodeDone,
    CallFinished,
    CallInterpreting,
    CallStarted,
    FunctionCallMade,
    LoopEvent,
    LoopStopped,
    MessageDelta,
    MessageFinished,
    MessageStarted,
    UsageReported,
)
from ...conversation.record import Outcome, StoredResponse

__all__ = ["ResponseBuilder", "render_item", "render_response", "sse"]

_USAGE = {
    "input_tokens": 0,
    "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
    "output_tokens": 0,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 0,
}


def render_item(item: Item, with_outputs: bool) -> dict[str, Any]:
    if isinstance(item, CodeCall):
        return _call(item, with_outputs)
    if isinstance(item, FunctionCall):
        return _function_call(item)
    if isinstance(item, FunctionOutput):
        output = {"type": "function_call_output", "call_id": item.call_id, "output": item.output}
        return {"id": item.id, **output, "status": "completed"}
    if isinstance(item, AssistantMessage):
        return _message(item)
    if isinstance(item, SystemMessage):
        return _input_message(item.id, item.role, [{"type": "input_text", "text": item.text}])
    parts: list[dict[str, Any]] = [{"type": "input_text", "text": item.text}] if item.text else []
    parts += [{"type": "input_image", "image_url": url, "detail": "auto", "file_id": None} for url in item.images]
    return _input_message(item.id, "user", parts)


def _input_message(item_id: str | None, role: str, content: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": item_id, "type": "message", "role": role, "status": "completed", "content": content}


def _call(call: CodeCall, with_outputs: bool) -> dict[str, Any]:
    outputs: list[dict[str, Any]] | None = None
    if with_outputs:
        outputs = [{"type": "logs", "logs": call.logs}] if call.logs else []
        outputs += [{"type": "image", "url": data_url("image/png", png)} for png in call.images]
    return {
        "id": call.id,
        "type": "code_interpreter_call",
        "code": call.code,
        "container_id": call.container_id,
        "outputs": outputs,
        "status": call.status.value,
    }


def _function_call(call: FunctionCall) -> dict[str, Any]:
    return {
        "id": call.id,
        "type": "function_call",
        "call_id": call.call_id,
        "name": call.name,
        "arguments": call.arguments,
        "status": "completed",
    }


def _part(text: str, message: AssistantMessage | None = None) -> dict[str, Any]:
    annotations = [_annotation(c) for c in message.citations] if message else []
    return {"type": "output_text", "text": text, "annotations": annotations, "logprobs": []}


def _annotation(citation: Any) -> dict[str, Any]:
    return {"type": "container_file_citation", **citation.model_dump()}


def _message(message: AssistantMessage, status: str = "completed") -> dict[str, Any]:
    content = [_part(message.text, message)] if status == "completed" else []
    return {"id": message.id, "type": "message", "status": status, "role": "assistant", "content": content}


def render_response(stored: StoredResponse) -> dict[str, Any]:
    """A finished response as OpenAI's Response object: the same whether just made or read back."""
    with_outputs = _wants_outputs(stored.parameters)
    return _envelope(
        stored.id,
        stored.created_at,
        stored.parameters,
        status=stored.status.value,
        output=[render_item(item, with_outputs) for item in stored.output],
        completed_at=stored.completed_at,
        error=stored.error.model_dump() if stored.error else None,
        incomplete_reason=stored.incomplete_reason,
        usage=_usage(stored.input_tokens, stored.output_tokens) if stored.status is not Outcome.IN_PROGRESS else None,
    )


def _wants_outputs(parameters: Mapping[str, Any]) -> bool:
    return "code_interpreter_call.outputs" in (parameters.get("include") or ())


def _usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    tokens = {"input_tokens": input_tokens, "output_tokens": output_tokens}
    return {**_USAGE, **tokens, "total_tokens": input_tokens + output_tokens}


def _envelope(
    response_id: str,
    created_at: int,
    request: Mapping[str, Any],
    status: str,
    output: list[dict[str, Any]],
    completed_at: int | None = None,
    error: dict[str, Any] | None = None,
    incomplete_reason: str | None = None,
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": request.get("background") is True,
        "completed_at": completed_at,
        "conversation": request.get("conversation"),
        "error": error,
        "incomplete_details": {"reason": incomplete_reason} if incomplete_reason else None,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "max_tool_calls": request.get("max_tool_calls"),
        "model": request["model"],
        "output": output,
        "parallel_tool_calls": _given(request, "parallel_tool_calls", True),
        "previous_response_id": request.get("previous_response_id"),
        "reasoning": request.get("reasoning") or {"effort": None, "summary": None},
        "service_tier": request.get("service_tier") or "default",
        "store": _given(request, "store", True),
        "temperature": _given(request, "temperature", 1.0),
        "text": request.get("text") or {"format": {"type": "text"}},
        "tool_choice": _given(request, "tool_choice", "auto"),
        "tools": request.get("tools", []),
        "top_p": _given(request, "top_p", 1.0),
        "truncation": request.get("truncation") or "disabled",
        "usage": usage,
        "user": request.get("user"),
        "metadata": request.get("metadata") or {},
    }


def _given(request: Mapping[str, Any], name: str, default: Any) -> Any:
    """The request's value, or OpenAI's default where it sent none (or null)."""
    value = request.get(name)
    return default if value is None else value


class ResponseBuilder:
    """Builds one Response's stream of events with one rising sequence_number, and its snapshots while in
    progress; the finished response is rendered from what the session kept (`render_response`)."""

    def __init__(self, response_id: str, created_at: int, request: dict[str, Any]) -> None:
        self.id = response_id
        self.created_at = created_at
        self.output: list[dict[str, Any]] = []
        self._request = request
        self._with_outputs = _wants_outputs(request)
        self._sequence = 0

    def response(self) -> dict[str, Any]:
        """The response while in progress."""
        return _envelope(self.id, self.created_at, self._request, "in_progress", list(self.output))

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return event

    def opening(self) -> Iterator[dict[str, Any]]:
        yield self._event("response.created", response=self.response())
        yield self._event("response.in_progress", response=self.response())

    def on(self, event: LoopEvent) -> Iterator[dict[str, Any]]:
        """The wire events for one loop event, keeping `output` up to date."""
        if isinstance(event, CallStarted):
            yield from self._on_call_started(event)
        elif isinstance(event, CallCodeDelta):
            yield from self._on_call_code_delta(event)
        elif isinstance(event, CallCodeDone):
            yield from self._on_call_code_done(event)
        elif isinstance(event, CallInterpreting):
            yield from self._on_call_interpreting(event)
        elif isinstance(event, CallFinished):
            yield from self._on_call_finished(event)
        elif isinstance(event, MessageStarted):
            yield from self._on_message_started(event)
        elif isinstance(event, MessageDelta):
            yield from self._on_message_delta(event)
        elif isinstance(event, MessageFinished):
            yield from self._on_message_finished(event)
        elif isinstance(event, FunctionCallMade):
            yield from self._on_function_call(event.call)
        else:
            assert isinstance(event, UsageReported | LoopStopped)  # the session keeps them for the end

    @property
    def _index(self) -> int:
        return len(self.output) - 1

    def _item_event(self, kind: str, item_id: str, **fields: Any) -> dict[str, Any]:
        return self._event(kind, item_id=item_id, output_index=self._index, **fields)

    def _on_call_started(self, event: CallStarted) -> Iterator[dict[str, Any]]:
        item: dict[str, Any] = {
            "id": event.call_id,
            "type": "code_interpreter_call",
            "code": "",
            "container_id": event.container_id,
            "outputs": [] if self._with_outputs else None,
            "status": "in_progress",
        }
        self.output.append(item)
        yield self._event("response.output_item.added", output_index=self._index, item=item)
        yield self._item_event("response.code_interpreter_call.in_progress", event.call_id)

    def _on_call_code_delta(self, event: CallCodeDelta) -> Iterator[dict[str, Any]]:
        self.output[self._index]["code"] += event.delta
        yield self._item_event("response.code_interpreter_call_code.delta", event.call_id, delta=event.delta)

    def _on_call_code_done(self, event: CallCodeDone) -> Iterator[dict[str, Any]]:
        yield self._item_event("response.code_interpreter_call_code.done", event.call_id, code=event.code)

    def _on_call_interpreting(self, event: CallInterpreting) -> Iterator[dict[str, Any]]:
        self.output[self._index]["status"] = "interpreting"
        yield self._item_event("response.code_interpreter_call.interpreting", event.call_id)

    def _on_call_finished(self, event: CallFinished) -> Iterator[dict[str, Any]]:
        self.output[self._index] = _call(event.call, self._with_outputs)
        yield self._item_event("response.code_interpreter_call.completed", event.call.id)
        yield self._event("response.output_item.done", output_index=self._index, item=self.output[self._index])

    def _on_message_started(self, event: MessageStarted) -> Iterator[dict[str, Any]]:
        item = {"id": event.message_id, "type": "message", "status": "in_progress", "role": "assistant", "content": []}
        self.output.append(item)
        yield self._event("response.output_item.added", output_index=self._index, item=item)
        yield self._item_event("response.content_part.added", event.message_id, content_index=0, part=_part(""))

    def _on_function_call(self, call: FunctionCall) -> Iterator[dict[str, Any]]:
        self.output.append({**_function_call(call), "arguments": "", "status": "in_progress"})
        yield self._event("response.output_item.added", output_index=self._index, item=self.output[self._index])
        yield self._item_event("response.function_call_arguments.delta", call.id, delta=call.arguments)
        yield self._item_event(
            "response.function_call_arguments.done", call.id, arguments=call.arguments, name=call.name
        )
        self.output[self._index] = _function_call(call)
        yield self._event("response.output_item.done", output_index=self._index, item=self.output[self._index])

    def _on_message_delta(self, event: MessageDelta) -> Iterator[dict[str, Any]]:
        yield self._item_event(
            "response.output_text.delta", event.message_id, content_index=0, delta=event.delta, logprobs=[]
        )

    def _on_message_finished(self, event: MessageFinished) -> Iterator[dict[str, Any]]:
        message = event.message
        for number, citation in enumerate(message.citations):
            yield self._item_event(
                "response.output_text.annotation.added",
                message.id,
                content_index=0,
                annotation_index=number,
                annotation=_annotation(citation),
            )
        yield self._item_event("response.output_text.done", message.id, content_index=0, text=message.text, logprobs=[])
        self.output[self._index] = _message(message)
        part = self.output[self._index]["content"][0]
        yield self._item_event("response.content_part.done", message.id, content_index=0, part=part)
        yield self._event("response.output_item.done", output_index=self._index, item=self.output[self._index])

    def replay(self, finished: StoredResponse) -> Iterator[dict[str, Any]]:
        """The events of a finished response whose live events are gone: its opening, each output item
        added and done (whole: no deltas), and its end."""
        yield from self.opening()
        for index, item in enumerate(render_response(finished)["output"]):
            yield self._event("response.output_item.added", output_index=index, item=item)
            yield self._event("response.output_item.done", output_index=index, item=item)
        yield self.closing(finished)

    def closing(self, finished: StoredResponse) -> dict[str, Any]:
        """The last event: response.completed, response.incomplete or response.failed, with the response."""
        # OpenAI has no response.cancelled event: a cancelled background stream ends as failed, status cancelled.
        kind = "failed" if finished.status is Outcome.CANCELLED else finished.status.value
        return self._event(f"response.{kind}", response=render_response(finished))


def sse(event: dict[str, Any]) -> str:
    return f"event: {event['type']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n"
