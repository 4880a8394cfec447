"""POST /v1/responses requests: the body's model, and its input translated into our conversation items."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..._errors import InvalidRequest
from ..._ids import new_hex_id
from ...conversation.items import (
    AssistantMessage,
    CallStatus,
    CodeCall,
    FunctionCall,
    FunctionOutput,
    Item,
    UserMessage,
)
from ...conversation.model import FunctionTool
from ._models import MemoryLimit, NetworkPolicyParam

__all__ = [
    "AutoContainer",
    "CodeInterpreterTool",
    "CreateResponseRequest",
    "ParsedInput",
    "check_function_calls",
    "parse_input",
]

INCLUDABLE = frozenset(
    {
        "code_interpreter_call.outputs",
        "file_search_call.results",
        "web_search_call.results",
        "web_search_call.action.sources",
        "message.input_image.image_url",
        "computer_call_output.output.image_url",
        "reasoning.encrypted_content",
        "message.output_text.logprobs",
    }
)


class AutoContainer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["auto"]
    file_ids: list[str] = Field(default_factory=list)
    memory_limit: MemoryLimit | None = None
    network_policy: NetworkPolicyParam | None = None


class CodeInterpreterTool(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["code_interpreter"]
    container: str | AutoContainer
    allowed_callers: list[str] | None = None


class CreateResponseRequest(BaseModel):
    """The fields of OpenAI's request body; any other field is a 400, never silently dropped."""

    model_config = ConfigDict(extra="forbid")

    model: str
    input: str | list[dict[str, Any]]
    instructions: str | None = None
    tools: list[dict[str, Any]] = Field(default_factory=list)
    tool_choice: str | dict[str, Any] = "auto"
    include: list[str] | None = None
    store: bool = True
    previous_response_id: str | None = None
    metadata: dict[str, str] | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_output_tokens: int | None = Field(default=None, ge=16)  # as OpenAI: at least 16
    max_tool_calls: int | None = None
    parallel_tool_calls: bool = True
    truncation: Literal["auto", "disabled"] | None = None
    user: str | None = None
    text: dict[str, Any] | None = None
    reasoning: dict[str, Any] | None = None
    service_tier: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    safety_identifier: str | None = None
    top_logprobs: int | None = None
    background: bool | None = None

    def code_interpreter(self) -> CodeInterpreterTool | None:
        """The code interpreter tool, checking every tool on the way: those kernelgate cannot serve are a 400."""
        found = None
        for index, tool in enumerate(self.tools):
            kind = tool.get("type")
            if kind == "code_interpreter":
                try:
                    found = CodeInterpreterTool.model_validate(tool)
                except ValueError as exc:
                    msg = f"Invalid code_interpreter tool: {exc}"
                    raise InvalidRequest(msg, f"tools[{index}]") from exc
            elif kind != "function":
                msg = (
                    f"Tool type {kind!r} is not supported by kernelgate: it serves 'code_interpreter' "
                    "and the client's 'function' tools."
                )
                raise InvalidRequest(msg, f"tools[{index}].type")
        return found

    def functions(self) -> list[FunctionTool]:
        """The client's own function tools, in the Responses shape {type, name, description, parameters}."""
        found = []
        for index, tool in enumerate(self.tools):
            if tool.get("type") != "function":
                continue
            if not isinstance(tool.get("name"), str):
                msg = "A function tool needs a name."
                raise InvalidRequest(msg, f"tools[{index}].name")
            parameters = tool.get("parameters") or {"type": "object", "properties": {}}
            found.append(FunctionTool(tool["name"], tool.get("description"), parameters))
        return found

    def wants_outputs(self) -> bool:
        unknown = [value for value in self.include or () if value not in INCLUDABLE]
        if unknown:
            msg = f"Invalid include value {unknown[0]!r}: one of {', '.join(sorted(INCLUDABLE))}."
            raise InvalidRequest(msg, "include")
        return "code_interpreter_call.outputs" in (self.include or ())


@dataclass
class ParsedInput:
    items: list[Item] = field(default_factory=list)
    instructions: list[str] = field(default_factory=list)
    """System and developer messages, which join the request's instructions."""
    file_ids: list[str] = field(default_factory=list)
    """input_file parts: Files API ids to place in the container."""


def check_function_calls(items: Sequence[Item]) -> None:
    """Each function call answered by one output, each output answering a call before it, as OpenAI checks.

    Every upstream API refuses a conversation with a call left unanswered; say so before asking one.
    """
    calls: set[str] = set()
    for item in items:
        if isinstance(item, FunctionCall):
            calls.add(item.call_id)
        elif isinstance(item, FunctionOutput):
            if item.call_id not in calls:
                msg = f"No tool call found for function call output with call_id {item.call_id}."
                raise InvalidRequest(msg, "input")
            calls.discard(item.call_id)
    if calls:
        msg = f"No tool output found for function call {sorted(calls)[0]}."
        raise InvalidRequest(msg, "input")


def parse_input(raw: str | list[dict[str, Any]]) -> ParsedInput:
    parsed = ParsedInput()
    if isinstance(raw, str):
        parsed.items.append(UserMessage(text=raw))
        return parsed
    for index, item in enumerate(raw):
        _parse_item(item, f"input[{index}]", parsed)
    return parsed


def _parse_item(item: dict[str, Any], where: str, parsed: ParsedInput) -> None:
    kind = item.get("type", "message")
    if kind == "message":
        role = item.get("role")
        text = _text_of(item.get("content"), where, parsed)
        if role == "user":
            parsed.items.append(UserMessage(text=text))
        elif role == "assistant":
            parsed.items.append(AssistantMessage(id=str(item.get("id") or new_hex_id("msg_", 48)), text=text))
        elif role in ("system", "developer"):
            parsed.instructions.append(text)
        else:
            msg = f"Invalid role {role!r}: one of 'user', 'assistant', 'system', 'developer'."
            raise InvalidRequest(msg, f"{where}.role")
    elif kind == "code_interpreter_call":
        parsed.items.append(_replayed_call(item, where))
    elif kind == "function_call":
        parsed.items.append(_function_call(item, where))
    elif kind == "function_call_output":
        parsed.items.append(_function_output(item, where))
    elif kind not in ("reasoning", "item_reference"):
        msg = f"Input items of type {kind!r} are not supported by kernelgate."
        raise InvalidRequest(msg, f"{where}.type")


def _text_of(content: Any, where: str, parsed: ParsedInput) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        msg = "Message content must be a string or a list of content parts."
        raise InvalidRequest(msg, f"{where}.content")
    texts = []
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text"):
            texts.append(str(part.get("text", "")))
        elif kind == "input_file" and part.get("file_id"):
            parsed.file_ids.append(str(part["file_id"]))
        elif kind not in ("input_image", "input_file", "refusal"):
            msg = f"Content parts of type {kind!r} are not supported."
            raise InvalidRequest(msg, f"{where}.content[{index}].type")
    return "\n".join(texts)


def _function_call(item: dict[str, Any], where: str) -> FunctionCall:
    try:
        return FunctionCall(
            id=str(item.get("id") or new_hex_id("fc_", 48)),
            call_id=str(item["call_id"]),
            name=str(item["name"]),
            arguments=str(item.get("arguments", "")),
        )
    except KeyError as exc:
        msg = "A function_call input item needs call_id and name."
        raise InvalidRequest(msg, where) from exc


def _function_output(item: dict[str, Any], where: str) -> FunctionOutput:
    if "call_id" not in item or "output" not in item:
        msg = "A function_call_output input item needs call_id and output."
        raise InvalidRequest(msg, where)
    output = item["output"]
    return FunctionOutput(
        call_id=str(item["call_id"]), output=output if isinstance(output, str) else json.dumps(output)
    )


def _replayed_call(item: dict[str, Any], where: str) -> CodeCall:
    try:
        outputs = item.get("outputs") or []
        logs = "".join(o.get("logs", "") for o in outputs if o.get("type") == "logs")
        return CodeCall(
            id=str(item["id"]),
            code=str(item.get("code") or ""),
            container_id=str(item["container_id"]),
            status=CallStatus(item.get("status", "completed")),
            logs=logs,
        )
    except (KeyError, ValueError, AttributeError, TypeError) as exc:
        msg = "A code_interpreter_call input item needs id, container_id, code and a valid status."
        raise InvalidRequest(msg, where) from exc
