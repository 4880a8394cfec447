"""Messages API requests as typed models, and their messages in the core's terms.

The code execution tool comes in two families: `code_execution_20250522` runs Python; the later ones
(`_20250825` and after) run bash commands too. A `server_tool_use` block kernelgate made is found again
by its id when a client sends the conversation back.
"""

from __future__ import annotations

import json
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
    UserMessage,
    data_url,
)
from ...conversation.model import FunctionTool, OutputFormat, Sampling, ToolChoice
from ...conversation.session import ItemReference
from ...upstreams.python_tool import PYTHON

__all__ = ["CreateMessageRequest", "ParsedMessages", "parse_messages"]

PYTHON_ONLY = "code_execution_20250522"
SHELL_VERSIONS = ("code_execution_20250825", "code_execution_20260120", "code_execution_20260521")
_TAG = "~"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


def _kind(known: tuple[str, ...]) -> Any:
    """A discriminator on `type`; a type not among `known` takes the `other` branch."""

    def pick(value: Any) -> str:
        kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
        return f"{_TAG}{kind if kind in known else 'other'}"

    return Discriminator(pick)


class CodeExecutionTool(_Lenient):
    type: Literal[
        "code_execution_20250522", "code_execution_20250825", "code_execution_20260120", "code_execution_20260521"
    ]
    name: Literal["code_execution"] = "code_execution"


class CustomTool(_Lenient):
    type: Literal["custom"] | None = None
    name: str
    description: str | None = None
    input_schema: dict[str, JsonValue]


class OtherTool(_Lenient):
    type: str


def _tool_kind(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    if kind in (PYTHON_ONLY, *SHELL_VERSIONS):
        return f"{_TAG}code"
    return f"{_TAG}custom" if kind in (None, "custom") else f"{_TAG}other"


Tool = Annotated[
    Annotated[CodeExecutionTool, Tag(f"{_TAG}code")]
    | Annotated[CustomTool, Tag(f"{_TAG}custom")]
    | Annotated[OtherTool, Tag(f"{_TAG}other")],
    Discriminator(_tool_kind),
]


class ToolChoiceParam(_Strict):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class Block(_Lenient):
    """A content block; only the fields of the types kernelgate reads are typed."""

    type: str
    text: str | None = None
    source: dict[str, JsonValue] | None = None
    id: str | None = None
    name: str | None = None
    input: dict[str, JsonValue] | None = None
    tool_use_id: str | None = None
    content: JsonValue = None
    is_error: bool | None = None
    file_id: str | None = None


class MessageParam(_Strict):
    role: Literal["user", "assistant"]
    content: str | list[Block]


class OutputConfig(_Lenient):
    format: dict[str, JsonValue] | None = None


class ContainerParam(_Lenient):
    id: str | None = None


class CreateMessageRequest(_Strict):
    model: str
    max_tokens: int = Field(ge=1)
    messages: list[MessageParam]
    system: str | list[Block] | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoiceParam | None = None
    stream: bool | None = None
    temperature: float | None = Field(default=None, ge=0, le=1)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_k: int | None = None
    stop_sequences: list[str] | None = None
    metadata: dict[str, JsonValue] | None = None
    container: str | ContainerParam | None = None
    output_config: OutputConfig | None = None
    thinking: dict[str, JsonValue] | None = None
    service_tier: str | None = None
    context_management: dict[str, JsonValue] | None = None

    def code_tool(self) -> CodeExecutionTool | None:
        found = None
        for index, tool in enumerate(self.tools or ()):
            if isinstance(tool, CodeExecutionTool):
                found = tool
            elif isinstance(tool, OtherTool):
                msg = (
                    f"tools.{index}: kernelgate does not serve the server tool '{tool.type}': it runs code "
                    "execution offline and passes custom tools to the client."
                )
                raise InvalidRequest(msg, f"tools.{index}.type")
        return found

    def container_id(self) -> str | None:
        return self.container.id if isinstance(self.container, ContainerParam) else self.container

    def functions(self) -> list[FunctionTool]:
        return [
            FunctionTool(tool.name, tool.description, dict(tool.input_schema))
            for tool in self.tools or ()
            if isinstance(tool, CustomTool)
        ]

    def choice(self) -> ToolChoice:
        choice = self.tool_choice
        if choice is None or choice.type == "auto":
            return ToolChoice("auto")
        if choice.type == "none":
            return ToolChoice("none")
        if choice.type == "any":
            return ToolChoice("required")
        if not choice.name:
            msg = "tool_choice.name: Field required for tool_choice of type 'tool'."
            raise InvalidRequest(msg, "tool_choice.name")
        return ToolChoice("required", (PYTHON if choice.name == "code_execution" else choice.name,))

    def output_format(self) -> OutputFormat | None:
        found = self.output_config.format if self.output_config else None
        if not found:
            return None
        schema = found.get("schema")
        return OutputFormat(schema=schema if isinstance(schema, dict) else None)

    def sampling(self) -> Sampling:
        return Sampling(temperature=self.temperature, top_p=self.top_p)

    def instructions(self) -> str | None:
        if isinstance(self.system, str):
            return self.system or None
        return "\n\n".join(block.text for block in self.system or () if block.text) or None


@dataclass
class ParsedMessages:
    items: list[Item | ItemReference] = field(default_factory=list)
    file_ids: list[str] = field(default_factory=list)
    """container_upload blocks: Files API files for /mnt/data."""


_RESULT_TYPES = (
    "code_execution_tool_result",
    "bash_code_execution_tool_result",
    "text_editor_code_execution_tool_result",
)
_TOOLS: dict[str, Literal["python", "bash", "text_editor"]] = {
    "bash_code_execution": "bash",
    "text_editor_code_execution": "text_editor",
}


def parse_messages(messages: list[MessageParam]) -> ParsedMessages:
    parsed = ParsedMessages()
    for index, message in enumerate(messages):
        where = f"messages.{index}"
        blocks = [Block(type="text", text=message.content)] if isinstance(message.content, str) else message.content
        if message.role == "user":
            _user(blocks, where, parsed)
        else:
            _assistant(blocks, where, parsed)
    return parsed


def _user(blocks: list[Block], where: str, parsed: ParsedMessages) -> None:
    texts: list[str] = []
    images: list[str] = []
    for number, block in enumerate(blocks):
        at = f"{where}.content.{number}"
        if block.type == "text":
            texts.append(block.text or "")
        elif block.type == "image":
            images.append(_image_url(block, at))
        elif block.type == "container_upload":
            if not block.file_id:
                msg = f"{at}.file_id: Field required"
                raise InvalidRequest(msg, f"{at}.file_id")
            parsed.file_ids.append(block.file_id)
        elif block.type == "tool_result":
            parsed.items.append(FunctionOutput(call_id=block.tool_use_id or "", output=_text_of(block.content)))
        elif block.type not in ("document", "search_result"):
            msg = f"{at}.type: kernelgate does not read content blocks of type '{block.type}' in a user message."
            raise InvalidRequest(msg, f"{at}.type")
    if texts or images:
        parsed.items.append(UserMessage(text="\n".join(texts), images=tuple(images), id=new_hex_id("msg_", 48)))


def _image_url(block: Block, where: str) -> str:
    source = block.source or {}
    if source.get("type") == "base64":
        return data_url(str(source.get("media_type")), str(source.get("data")))
    if source.get("type") == "url" and isinstance(source.get("url"), str):
        return str(source["url"])
    msg = f"{where}.source: an image needs a base64 or url source."
    raise InvalidRequest(msg, f"{where}.source")


def _text_of(content: JsonValue) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return json.dumps(content)


def _assistant(blocks: list[Block], where: str, parsed: ParsedMessages) -> None:
    texts: list[str] = []
    uses: dict[str, Block] = {}

    def flush() -> None:
        if texts:
            parsed.items.append(AssistantMessage(id=new_hex_id("msg_", 48), text="".join(texts)))
            texts.clear()

    for number, block in enumerate(blocks):
        if block.type == "text":
            texts.append(block.text or "")
            continue
        flush()
        if block.type == "tool_use" and block.id and block.name:
            arguments = json.dumps(block.input or {})
            parsed.items.append(
                FunctionCall(id=new_hex_id("fc_", 48), call_id=block.id, name=block.name, arguments=arguments)
            )
        elif block.type == "server_tool_use" and block.id:
            uses[block.id] = block
        elif block.type in _RESULT_TYPES and block.tool_use_id in uses:
            use = uses.pop(block.tool_use_id)
            parsed.items.append(_replayed(use, block, f"{where}.content.{number}"))
    flush()


def _replayed(use: Block, result: Block, where: str) -> Item | ItemReference:
    """A code call from history: kernelgate's own is found again by id; another is taken as written."""
    content = result.content if isinstance(result.content, dict) else {}
    tool = _TOOLS.get(use.name or "", "python")
    stdout = str(content.get("stdout", content.get("content", "")))
    stderr = str(content.get("stderr", content.get("error_message", "")))
    given = use.input or {}
    code = json.dumps(given) if tool == "text_editor" else given.get("command" if tool == "bash" else "code")
    return_code = content.get("return_code")
    written = CodeCall(
        id=use.id or new_hex_id("ci_", 48),
        code=str(code or ""),
        tool=tool,
        container_id="",
        status=CallStatus.COMPLETED if "return_code" in content else CallStatus.INCOMPLETE,
        logs=stdout + stderr,
        stdout=stdout,
        stderr=stderr,
        return_code=return_code if isinstance(return_code, int) else 0,
    )
    return ItemReference(written.id, where, fallback=written)
