"""Our items and loop events as Anthropic's Message and its stream of events.

A Python call is a `server_tool_use` named `code_execution` (input `{code}`) and its
`code_execution_tool_result`; a bash call is `bash_code_execution` (input `{command}`) and
`bash_code_execution_tool_result`. Results carry `stdout`, `stderr`, `return_code` and one
`*_output` block per file the call wrote (a `file_id` the Files API under /anthropic serves); a call
stopped at the timeout is the tool's `execution_time_exceeded` error.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from typing import Any

from ...conversation.items import AssistantMessage, CallStatus, CodeCall, FunctionCall, Item
from ...conversation.loop import (
    CallCodeDelta,
    CallCodeDone,
    CallFinished,
    CallStarted,
    FunctionCallMade,
    LoopEvent,
    MessageDelta,
    MessageFinished,
    MessageStarted,
)
from ...conversation.record import Outcome, StoredResponse
from ...upstreams.python_tool import arguments_object

__all__ = ["MessageStream", "message_body"]

_STOP = {"max_output_tokens": "max_tokens", "content_filter": "refusal"}


def _names(call: CodeCall | CallStarted) -> tuple[str, str, str]:
    """(server tool name, result block type, the input's key: '' when the call's code is its whole input)."""
    if call.tool == "bash":
        return "bash_code_execution", "bash_code_execution_tool_result", "command"
    if call.tool == "text_editor":
        return "text_editor_code_execution", "text_editor_code_execution_tool_result", ""
    return "code_execution", "code_execution_tool_result", "code"


def server_tool_use(call: CodeCall) -> dict[str, Any]:
    name, _, key = _names(call)
    given = {key: call.code} if key else arguments_object(call.code)
    return {"type": "server_tool_use", "id": call.id, "name": name, "input": given}


_EDIT_RESULTS = {
    "view": ("view_result", ("file_type", "num_lines", "start_line", "total_lines")),
    "create": ("create_result", ("is_file_update",)),
    "str_replace": ("str_replace_result", ("old_start", "old_lines", "new_start", "new_lines", "lines")),
}


def _edit_result(call: CodeCall) -> dict[str, Any]:
    edit = call.edit or {}
    prefix = "text_editor_code_execution"
    kind, fields = _EDIT_RESULTS.get(str(edit.get("command")), ("", ()))
    if edit.get("error_code") or not kind:
        code = edit.get("error_code") or "invalid_tool_input"
        content: dict[str, Any] = {
            "type": f"{prefix}_tool_result_error",
            "error_code": code,
            "error_message": call.stderr,
        }
    else:
        content = {"type": f"{prefix}_{kind}", **{name: edit.get(name) for name in fields}}
        if kind == "view_result":
            content["content"] = call.stdout
    return {"type": f"{prefix}_tool_result", "tool_use_id": call.id, "content": content}


def tool_result(call: CodeCall) -> dict[str, Any]:
    if call.tool == "text_editor":
        return _edit_result(call)
    _, kind, _ = _names(call)
    prefix = kind.removesuffix("_tool_result")
    if call.status is CallStatus.INCOMPLETE:
        content: dict[str, Any] = {"type": f"{prefix}_tool_result_error", "error_code": "execution_time_exceeded"}
    else:
        return_code = call.return_code or (137 if call.status is CallStatus.FAILED else 0)
        content = {
            "type": f"{prefix}_result",
            "stdout": call.stdout,
            "stderr": call.stderr,
            "return_code": return_code,
            "content": [{"type": f"{prefix}_output", "file_id": file.file_id} for file in call.files],
        }
    return {"type": kind, "tool_use_id": call.id, "content": content}


def tool_use(call: FunctionCall) -> dict[str, Any]:
    return {"type": "tool_use", "id": call.call_id, "name": call.name, "input": arguments_object(call.arguments)}


def _blocks(item: Item) -> list[dict[str, Any]]:
    if isinstance(item, CodeCall):
        return [server_tool_use(item), tool_result(item)]
    if isinstance(item, FunctionCall):
        return [tool_use(item)]
    if isinstance(item, AssistantMessage):
        return [{"type": "text", "text": item.text, "citations": None}] if item.text else []
    return []


def stop_reason(stored: StoredResponse) -> str:
    if stored.status is Outcome.INCOMPLETE and stored.incomplete_reason:
        return _STOP[stored.incomplete_reason]
    return "tool_use" if any(isinstance(item, FunctionCall) for item in stored.output) else "end_turn"


def container(container_id: str | None, expires_at: int | None) -> dict[str, Any] | None:
    if container_id is None or expires_at is None:
        return None
    when = datetime.datetime.fromtimestamp(expires_at, datetime.UTC).isoformat().replace("+00:00", "Z")
    return {"id": container_id, "expires_at": when}


def _usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {"input_tokens": input_tokens, "output_tokens": output_tokens}


def message_body(stored: StoredResponse, box: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "id": stored.id,
        "type": "message",
        "role": "assistant",
        "model": stored.model,
        "content": [block for item in stored.output for block in _blocks(item)],
        "stop_reason": stop_reason(stored),
        "stop_sequence": None,
        "usage": _usage(stored.input_tokens, stored.output_tokens),
        "container": box,
    }


class MessageStream:
    """The stream of one message: message_start, each block's start / delta / stop, message_delta, message_stop."""

    def __init__(self, message_id: str, model: str) -> None:
        self._id, self._model = message_id, model
        self._index = -1
        self._wrapped = True

    def _event(self, kind: str, **fields: Any) -> str:
        return f"event: {kind}\ndata: {json.dumps({'type': kind, **fields}, separators=(',', ':'))}\n\n"

    def _start(self, block: dict[str, Any]) -> str:
        self._index += 1
        return self._event("content_block_start", index=self._index, content_block=block)

    def _delta(self, delta: dict[str, Any]) -> str:
        return self._event("content_block_delta", index=self._index, delta=delta)

    def _stop(self) -> str:
        return self._event("content_block_stop", index=self._index)

    def opening(self) -> str:
        message: dict[str, Any] = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": _usage(0, 0),
        }
        return self._event("message_start", message=message)

    def on(self, event: LoopEvent) -> Iterator[str]:
        if isinstance(event, MessageStarted):
            yield self._start({"type": "text", "text": "", "citations": None})
        elif isinstance(event, MessageDelta):
            yield self._delta({"type": "text_delta", "text": event.delta})
        elif isinstance(event, MessageFinished):
            yield self._stop()
        elif isinstance(event, CallStarted):
            name, _, key = _names(event)
            self._wrapped = bool(key)  # code goes inside {"code": "..."}; the editor's JSON input goes as it is
            yield self._start({"type": "server_tool_use", "id": event.call_id, "name": name, "input": {}})
            if key:
                yield self._delta({"type": "input_json_delta", "partial_json": f'{{"{key}": "'})
        elif isinstance(event, CallCodeDelta):
            piece = json.dumps(event.delta)[1:-1] if self._wrapped else event.delta
            yield self._delta({"type": "input_json_delta", "partial_json": piece})
        elif isinstance(event, CallCodeDone):
            if self._wrapped:
                yield self._delta({"type": "input_json_delta", "partial_json": '"}'})
            yield self._stop()
        elif isinstance(event, CallFinished):
            yield self._start(tool_result(event.call))
            yield self._stop()
        elif isinstance(event, FunctionCallMade):
            block = {**tool_use(event.call), "input": {}}
            yield self._start(block)
            yield self._delta({"type": "input_json_delta", "partial_json": json.dumps(tool_use(event.call)["input"])})
            yield self._stop()

    def closing(self, stored: StoredResponse, box: dict[str, Any] | None) -> Iterator[str]:
        delta = {"stop_reason": stop_reason(stored), "stop_sequence": None, "container": box}
        yield self._event("message_delta", delta=delta, usage=_usage(stored.input_tokens, stored.output_tokens))
        yield self._event("message_stop")

    def error(self, kind: str, message: str) -> str:
        return self._event("error", error={"type": kind, "message": message})
