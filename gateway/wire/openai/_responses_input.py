"""POST /v1/responses requests as typed models, and their input, tools and options in the core's terms.

Unknown top-level parameters are refused, as OpenAI refuses them. Input items are read leniently
(clients replay output items with fields of their own), but every item and part type is known or a 400.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, JsonValue, Tag

from ..._errors import InvalidRequest
from ..._ids import new_hex_id
from ...conversation.items import (
    AssistantMessage,
    CallStatus,
    CodeCall,
    FunctionCall,
    FunctionOutput,
    Item,
    SystemMessage,
    UserMessage,
    split_data_url,
)
from ...conversation.model import FunctionTool, OutputFormat, ToolChoice
from ...conversation.session import InlineFile, ItemReference
from ...upstreams.python_tool import PYTHON
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

_REPLAYED_STATUS = {"completed": CallStatus.COMPLETED, "failed": CallStatus.FAILED}

TAG = "~"
"""Marks a union's branch in a validation error's location (`input.~items.0`): the error body leaves it out."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


def _kind(default: str | None = None, other: tuple[str, ...] = ()) -> Any:
    """A discriminator on `type` (`default` when it is missing); with `other` = (branch, *known), a type
    not among the known ones takes that branch."""

    def pick(value: Any) -> str | None:
        kind = value.get("type", default) if isinstance(value, dict) else getattr(value, "type", default)
        if not isinstance(kind, str):
            return None
        if other and kind not in other[1:]:
            kind = other[0]
        return f"{TAG}{kind}"

    return Discriminator(pick)


# -- tools ----------------------------------------------------------------------------------------


class AutoContainer(_Strict):
    type: Literal["auto"]
    file_ids: list[str] = Field(default_factory=list)
    memory_limit: MemoryLimit | None = None
    network_policy: NetworkPolicyParam | None = None


class CodeInterpreterTool(_Strict):
    type: Literal["code_interpreter"]
    container: str | AutoContainer
    allowed_callers: list[str] | None = None


class FunctionToolParam(_Strict):
    type: Literal["function"]
    name: str
    description: str | None = None
    parameters: dict[str, JsonValue] | None = None
    strict: bool | None = None
    defer_loading: bool | None = None


class OtherTool(_Lenient):
    """A hosted tool kernelgate does not run (web_search, file_search, ...): refused by name."""

    type: str


Tool = Annotated[
    Annotated[CodeInterpreterTool, Tag(f"{TAG}code_interpreter")]
    | Annotated[FunctionToolParam, Tag(f"{TAG}function")]
    | Annotated[OtherTool, Tag(f"{TAG}other")],
    _kind(other=("other", "code_interpreter", "function")),
]


# -- tool_choice and text.format ------------------------------------------------------------------


class HostedToolChoice(_Strict):
    type: str


class FunctionChoice(_Strict):
    type: Literal["function"]
    name: str


class AllowedTools(_Strict):
    type: Literal["allowed_tools"]
    mode: Literal["auto", "required"]
    tools: list[dict[str, JsonValue]]


ToolChoiceParam = (
    Literal["none", "auto", "required"]
    | Annotated[
        Annotated[FunctionChoice, Tag(f"{TAG}function")]
        | Annotated[AllowedTools, Tag(f"{TAG}allowed_tools")]
        | Annotated[HostedToolChoice, Tag(f"{TAG}hosted")],
        _kind(other=("hosted", "function", "allowed_tools")),
    ]
)


class TextFormatText(_Strict):
    type: Literal["text"]


class TextFormatJsonObject(_Strict):
    type: Literal["json_object"]


class TextFormatJsonSchema(_Strict):
    type: Literal["json_schema"]
    name: str = Field(max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    schema_: dict[str, JsonValue] = Field(alias="schema")
    description: str | None = None
    strict: bool | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)


class TextConfig(_Strict):
    format: (
        Annotated[
            Annotated[TextFormatText, Tag(f"{TAG}text")]
            | Annotated[TextFormatJsonObject, Tag(f"{TAG}json_object")]
            | Annotated[TextFormatJsonSchema, Tag(f"{TAG}json_schema")],
            _kind(),
        ]
        | None
    ) = None
    verbosity: Literal["low", "medium", "high"] | None = None


# -- input items ----------------------------------------------------------------------------------


class TextPart(_Lenient):
    type: Literal["input_text", "output_text", "text"]
    text: str


class ImagePart(_Lenient):
    type: Literal["input_image"]
    image_url: str | None = None
    file_id: str | None = None
    detail: Literal["low", "high", "auto", "original"] | None = None


class FilePart(_Lenient):
    type: Literal["input_file"]
    file_id: str | None = None
    file_data: str | None = None
    file_url: str | None = None
    filename: str | None = None


class RefusalPart(_Lenient):
    type: Literal["refusal"]
    refusal: str = ""


Part = Annotated[
    Annotated[TextPart, Tag(f"{TAG}input_text")]
    | Annotated[TextPart, Tag(f"{TAG}output_text")]
    | Annotated[TextPart, Tag(f"{TAG}text")]
    | Annotated[ImagePart, Tag(f"{TAG}input_image")]
    | Annotated[FilePart, Tag(f"{TAG}input_file")]
    | Annotated[RefusalPart, Tag(f"{TAG}refusal")],
    _kind(),
]


def _str_or_list(value: Any) -> str:
    return f"{TAG}str" if isinstance(value, str) else f"{TAG}list"


TextOrParts = Annotated[
    Annotated[str, Tag(f"{TAG}str")] | Annotated[list[Part], Tag(f"{TAG}list")], Discriminator(_str_or_list)
]


class MessageInput(_Lenient):
    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: TextOrParts
    id: str | None = None


class LogsOutput(_Lenient):
    type: Literal["logs"]
    logs: str


class ImageOutput(_Lenient):
    type: Literal["image"]
    url: str


class CodeCallInput(_Lenient):
    type: Literal["code_interpreter_call"]
    id: str
    container_id: str
    code: str | None = None
    outputs: (
        list[Annotated[Annotated[LogsOutput, Tag(f"{TAG}logs")] | Annotated[ImageOutput, Tag(f"{TAG}image")], _kind()]]
        | None
    ) = None
    status: Literal["in_progress", "completed", "incomplete", "interpreting", "failed"] = "completed"


class FunctionCallInput(_Lenient):
    type: Literal["function_call"]
    call_id: str
    name: str
    arguments: str = ""
    id: str | None = None


class FunctionOutputInput(_Lenient):
    type: Literal["function_call_output"]
    id: str | None = None
    call_id: str
    output: TextOrParts


class ItemReferenceInput(_Lenient):
    type: Literal["item_reference"]
    id: str


class ReasoningInput(_Lenient):
    """A reasoning item of another model: there is nothing in it our models can read."""

    type: Literal["reasoning"]


InputItem = Annotated[
    Annotated[MessageInput, Tag(f"{TAG}message")]
    | Annotated[CodeCallInput, Tag(f"{TAG}code_interpreter_call")]
    | Annotated[FunctionCallInput, Tag(f"{TAG}function_call")]
    | Annotated[FunctionOutputInput, Tag(f"{TAG}function_call_output")]
    | Annotated[ItemReferenceInput, Tag(f"{TAG}item_reference")]
    | Annotated[ReasoningInput, Tag(f"{TAG}reasoning")],
    _kind("message"),
]


class ConversationParam(_Strict):
    id: str


class CreateResponseRequest(_Strict):
    """The fields of OpenAI's request body; any other field is a 400, never silently dropped."""

    model: str
    input: Annotated[
        Annotated[str, Tag(f"{TAG}str")] | Annotated[list[InputItem], Tag(f"{TAG}list")], Discriminator(_str_or_list)
    ] = ""
    instructions: str | None = None
    tools: list[Tool] = Field(default_factory=list)
    tool_choice: ToolChoiceParam | None = None
    include: list[str] | None = None
    store: bool | None = None
    previous_response_id: str | None = None
    conversation: str | ConversationParam | None = None
    metadata: dict[str, str] | None = None
    stream: bool | None = None
    stream_options: dict[str, JsonValue] | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_output_tokens: int | None = Field(default=None, ge=16)  # as OpenAI: at least 16
    max_tool_calls: int | None = Field(default=None, ge=1)
    parallel_tool_calls: bool | None = None
    truncation: Literal["auto", "disabled"] | None = None
    user: str | None = None
    text: TextConfig | None = None
    reasoning: dict[str, JsonValue] | None = None
    service_tier: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    safety_identifier: str | None = None
    top_logprobs: int | None = None
    background: bool | None = None

    @property
    def conversation_id(self) -> str | None:
        return self.conversation.id if isinstance(self.conversation, ConversationParam) else self.conversation

    @property
    def keep(self) -> bool:
        return self.store is not False

    def code_interpreter(self) -> CodeInterpreterTool | None:
        """The code interpreter tool, if asked for; a hosted tool kernelgate cannot run is a 400."""
        found = None
        for index, tool in enumerate(self.tools):
            if isinstance(tool, CodeInterpreterTool):
                found = tool
            elif isinstance(tool, OtherTool):
                msg = (
                    f"Tool type {tool.type!r} is not supported by kernelgate: it runs 'code_interpreter' "
                    "and passes the client's 'function' tools to the model."
                )
                raise InvalidRequest(msg, f"tools[{index}].type")
        return found

    def functions(self) -> list[FunctionTool]:
        """The client's own function tools."""
        return [
            FunctionTool(tool.name, tool.description, tool.parameters or {"type": "object", "properties": {}})
            for tool in self.tools
            if isinstance(tool, FunctionToolParam)
        ]

    def choice(self) -> ToolChoice:
        """tool_choice in the core's terms, checked against the tools there are."""
        choice = self.tool_choice
        functions = {tool.name for tool in self.functions()}
        code = self.code_interpreter() is not None
        if choice is None or isinstance(choice, str):
            return ToolChoice(choice or "auto")
        if isinstance(choice, FunctionChoice):
            if choice.name not in functions:
                msg = f"Tool choice 'function' with name '{choice.name}' not found in 'tools' parameter."
                raise InvalidRequest(msg, "tool_choice")
            return ToolChoice("required", (choice.name,))
        if isinstance(choice, HostedToolChoice):
            if choice.type != "code_interpreter" or not code:
                msg = f"Tool choice '{choice.type}' not found in 'tools' parameter."
                raise InvalidRequest(msg, "tool_choice")
            return ToolChoice("required", (PYTHON,))
        names = []
        for index, tool in enumerate(choice.tools):
            name = PYTHON if tool.get("type") == "code_interpreter" and code else tool.get("name")
            if name != PYTHON and name not in functions:
                msg = f"Allowed tool {json.dumps(tool)} not found in 'tools' parameter."
                raise InvalidRequest(msg, f"tool_choice.tools[{index}]")
            names.append(str(name))
        return ToolChoice(choice.mode, tuple(names))

    def output_format(self) -> OutputFormat | None:
        found = self.text.format if self.text else None
        if isinstance(found, TextFormatJsonObject):
            return OutputFormat()
        if isinstance(found, TextFormatJsonSchema):
            return OutputFormat(found.schema_, found.name, found.description, found.strict)
        return None

    def wants_outputs(self) -> bool:
        unknown = [value for value in self.include or () if value not in INCLUDABLE]
        if unknown:
            msg = f"Invalid include value {unknown[0]!r}: one of {', '.join(sorted(INCLUDABLE))}."
            raise InvalidRequest(msg, "include")
        return "code_interpreter_call.outputs" in (self.include or ())

    def echo(self) -> dict[str, JsonValue]:
        """The request's parameters as a response echoes them (the input is not among them)."""
        parameters = self.model_dump(mode="json", exclude={"input", "tools", "conversation"})
        parameters["conversation"] = {"id": self.conversation_id} if self.conversation_id else None
        parameters["tools"] = [tool.model_dump(mode="json", exclude_unset=True) for tool in self.tools]
        return parameters


@dataclass
class ParsedInput:
    items: list[Item | ItemReference] = field(default_factory=list)
    file_ids: list[str] = field(default_factory=list)
    """input_file parts by id: Files API files to place in the container."""
    files: list[InlineFile] = field(default_factory=list)
    """input_file parts with their data, likewise."""
    image_file_ids: list[tuple[str, str]] = field(default_factory=list)
    """(where, file id) of input_image parts that name an uploaded file: the route reads them."""


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


def parse_input(raw: str | list[Any]) -> ParsedInput:
    parsed = ParsedInput()
    if isinstance(raw, str):
        if raw:
            parsed.items.append(UserMessage(text=raw, id=new_hex_id("msg_", 48)))
        return parsed
    for index, item in enumerate(raw):
        _parse_item(item, f"input[{index}]", parsed)
    return parsed


def _parse_item(item: Any, where: str, parsed: ParsedInput) -> None:
    if isinstance(item, MessageInput):
        text, images = _content(item.content, where, parsed)
        message_id = item.id or new_hex_id("msg_", 48)
        if item.role == "user":
            parsed.items.append(UserMessage(text=text, images=tuple(images), id=message_id))
        elif item.role == "assistant":
            parsed.items.append(AssistantMessage(id=message_id, text=text))
        else:
            parsed.items.append(SystemMessage(text=text, role=item.role, id=message_id))
    elif isinstance(item, CodeCallInput):
        logs = "".join(output.logs for output in item.outputs or () if isinstance(output, LogsOutput))
        status = _REPLAYED_STATUS.get(item.status, CallStatus.INCOMPLETE)  # cut short, as far as a model knows
        parsed.items.append(
            CodeCall(id=item.id, code=item.code or "", container_id=item.container_id, status=status, logs=logs)
        )
    elif isinstance(item, FunctionCallInput):
        call_id = item.id or new_hex_id("fc_", 48)
        parsed.items.append(FunctionCall(id=call_id, call_id=item.call_id, name=item.name, arguments=item.arguments))
    elif isinstance(item, FunctionOutputInput):
        output = item.output if isinstance(item.output, str) else _content(item.output, where, parsed)[0]
        parsed.items.append(FunctionOutput(call_id=item.call_id, output=output, id=item.id or new_hex_id("fco_", 48)))
    elif isinstance(item, ItemReferenceInput):
        parsed.items.append(ItemReference(item.id, where))


def _content(content: str | list[Any], where: str, parsed: ParsedInput) -> tuple[str, list[str]]:
    """A message's text (its text parts, joined) and its image URLs; files go to the container."""
    if isinstance(content, str):
        return content, []
    texts: list[str] = []
    images: list[str] = []
    for index, part in enumerate(content):
        at = f"{where}.content[{index}]"
        if isinstance(part, TextPart):
            texts.append(part.text)
        elif isinstance(part, ImagePart):
            if part.image_url:
                images.append(part.image_url)
            elif part.file_id:
                parsed.image_file_ids.append((at, part.file_id))
                images.append(f"file:{part.file_id}")  # the route swaps in the file's data URL
            else:
                msg = "An input_image needs image_url or file_id."
                raise InvalidRequest(msg, at)
        elif isinstance(part, FilePart):
            _file(part, at, parsed)
    return "\n".join(texts), images


def _file(part: FilePart, where: str, parsed: ParsedInput) -> None:
    if part.file_id:
        parsed.file_ids.append(part.file_id)
    elif part.file_data:
        inline = split_data_url(part.file_data)
        data = inline[1] if inline else part.file_data
        try:
            decoded = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as exc:
            msg = "file_data must be base64 (or a base64 data URL)."
            raise InvalidRequest(msg, f"{where}.file_data") from exc
        parsed.files.append(InlineFile(part.filename or "file", decoded))
    elif part.file_url:
        msg = (
            "kernelgate does not fetch file_url: the sandbox and the gateway stay offline. Send the file as "
            "file_data, or upload it to /v1/files and send its file_id."
        )
        raise InvalidRequest(msg, f"{where}.file_url")
    else:
        msg = "An input_file needs file_id or file_data."
        raise InvalidRequest(msg, where)
