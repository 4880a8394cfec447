"""Our items and loop events as Gemini's GenerateContentResponse, whole or as streamed chunks.

A code call is an `executableCode` part (language PYTHON, with the call's id), then a
`codeExecutionResult` part (`OUTCOME_OK`, `OUTCOME_FAILED` when the code raised or the kernel died,
`OUTCOME_DEADLINE_EXCEEDED` at the timeout), then one `inlineData` part per figure.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

from ...conversation.items import AssistantMessage, CallStatus, CodeCall, FunctionCall, Item
from ...conversation.loop import CallCodeDone, CallFinished, FunctionCallMade, LoopEvent, MessageDelta
from ...conversation.record import Outcome, StoredResponse
from ...upstreams.python_tool import arguments_object

__all__ = ["chunk", "event_parts", "response_body"]

_FINISH = {"max_output_tokens": "MAX_TOKENS", "content_filter": "SAFETY"}


def _signed(part: dict[str, Any], signature: bytes | None) -> dict[str, Any]:
    return {**part, "thoughtSignature": base64.b64encode(signature).decode()} if signature else part


def code_part(call_id: str, code: str) -> dict[str, Any]:
    return {"executableCode": {"language": "PYTHON", "code": code, "id": call_id}}


def result_parts(call: CodeCall) -> list[dict[str, Any]]:
    if call.status is CallStatus.INCOMPLETE:
        outcome = "OUTCOME_DEADLINE_EXCEEDED"
    elif call.status is CallStatus.FAILED or call.raised:
        outcome = "OUTCOME_FAILED"
    else:
        outcome = "OUTCOME_OK"
    parts: list[dict[str, Any]] = [{"codeExecutionResult": {"outcome": outcome, "output": call.logs, "id": call.id}}]
    parts += [{"inlineData": {"mimeType": "image/png", "data": base64.b64encode(png).decode()}} for png in call.images]
    return parts


def function_part(call: FunctionCall) -> dict[str, Any]:
    part = {"functionCall": {"name": call.name, "args": arguments_object(call.arguments), "id": call.call_id}}
    return _signed(part, call.signature)


def item_parts(item: Item) -> list[dict[str, Any]]:
    if isinstance(item, CodeCall):
        return [_signed(code_part(item.id, item.code), item.signature), *result_parts(item)]
    if isinstance(item, FunctionCall):
        return [function_part(item)]
    if isinstance(item, AssistantMessage):
        return [{"text": item.text}] if item.text else []
    return []


def event_parts(event: LoopEvent) -> list[dict[str, Any]]:
    """The parts one loop event adds to the stream (code goes out when complete, before it runs)."""
    if isinstance(event, MessageDelta):
        return [{"text": event.delta}]
    if isinstance(event, CallCodeDone):
        return [code_part(event.call_id, event.code)]
    if isinstance(event, CallFinished):
        return result_parts(event.call)
    if isinstance(event, FunctionCallMade):
        return [function_part(event.call)]
    return []


def _usage(stored: StoredResponse) -> dict[str, int]:
    return {
        "promptTokenCount": stored.input_tokens,
        "candidatesTokenCount": stored.output_tokens,
        "totalTokenCount": stored.input_tokens + stored.output_tokens,
    }


def _finish_reason(stored: StoredResponse) -> str:
    if stored.status is Outcome.INCOMPLETE and stored.incomplete_reason:
        return _FINISH[stored.incomplete_reason]
    return "STOP"


def chunk(
    response_id: str, model: str, parts: Iterable[dict[str, Any]], stored: StoredResponse | None = None
) -> dict[str, Any]:
    """One GenerateContentResponse: the parts, and (the last one) why it finished and the usage."""
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": list(parts)}, "index": 0}
    body: dict[str, Any] = {"candidates": [candidate], "modelVersion": model, "responseId": response_id}
    if stored is not None:
        candidate["finishReason"] = _finish_reason(stored)
        body["usageMetadata"] = _usage(stored)
    return body


def response_body(stored: StoredResponse) -> dict[str, Any]:
    parts = [part for item in stored.output for part in item_parts(item)]
    return chunk(stored.id, stored.model, parts, stored)
