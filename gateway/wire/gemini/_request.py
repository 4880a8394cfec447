"""generateContent requests as typed models (camelCase as the REST API writes them, snake_case as HasteKit
and proto-JSON clients may), and their contents in the core's terms.

A client replays the model turns it got back: an `executableCode` part kernelgate made is found again by
its id (and with it the call's container); any other is taken as written.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import mimetypes
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue
from pydantic.alias_generators import to_camel

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
from ...conversation.session import InlineFile, ItemReference

__all__ = ["GenerateContentRequest", "ParsedContents", "parse_contents"]


class _Gemini(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class _Lenient(_Gemini):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class Blob(_Lenient):
    mime_type: str
    data: str
    display_name: str | None = None


class FileData(_Lenient):
    file_uri: str
    mime_type: str | None = None


class FunctionCallPart(_Lenient):
    name: str
    args: dict[str, JsonValue] | None = None
    id: str | None = None


class FunctionResponsePart(_Lenient):
    name: str
    response: dict[str, JsonValue] | None = None
    id: str | None = None


class ExecutableCode(_Lenient):
    code: str
    language: str | None = None
    id: str | None = None


class CodeExecutionResult(_Lenient):
    outcome: str | None = None
    output: str | None = None
    id: str | None = None


class Part(_Lenient):
    text: str | None = None
    thought: bool | None = None
    thought_signature: str | None = None
    inline_data: Blob | None = None
    file_data: FileData | None = None
    function_call: FunctionCallPart | None = None
    function_response: FunctionResponsePart | None = None
    executable_code: ExecutableCode | None = None
    code_execution_result: CodeExecutionResult | None = None


class Content(_Lenient):
    role: Literal["user", "model", "function"] | None = None
    parts: list[Part] = Field(default_factory=list)


class FunctionDeclaration(_Lenient):
    name: str
    description: str | None = None
    parameters: dict[str, JsonValue] | None = None
    parameters_json_schema: dict[str, JsonValue] | None = None


class Tool(_Lenient):
    function_declarations: list[FunctionDeclaration] | None = None
    code_execution: dict[str, JsonValue] | None = None
    google_search: dict[str, JsonValue] | None = None
    google_search_retrieval: dict[str, JsonValue] | None = None
    url_context: dict[str, JsonValue] | None = None


class FunctionCallingConfig(_Lenient):
    mode: Literal["AUTO", "ANY", "NONE", "VALIDATED", "MODE_UNSPECIFIED"] | None = None
    allowed_function_names: list[str] | None = None


class ToolConfig(_Lenient):
    function_calling_config: FunctionCallingConfig | None = None


class GenerationConfig(_Lenient):
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_output_tokens: int | None = Field(default=None, ge=1)
    candidate_count: int | None = Field(default=None, ge=1, le=1)
    response_mime_type: str | None = None
    response_schema: dict[str, JsonValue] | None = None
    response_json_schema: dict[str, JsonValue] | None = None


_UNSERVED = ("google_search", "google_search_retrieval", "url_context")


class GenerateContentRequest(_Gemini):
    contents: list[Content]
    tools: list[Tool] | None = None
    tool_config: ToolConfig | None = None
    system_instruction: Content | None = None
    generation_config: GenerationConfig | None = None
    safety_settings: list[dict[str, JsonValue]] | None = None
    cached_content: str | None = None
    labels: dict[str, str] | None = None

    def code_execution(self) -> bool:
        """Whether the code execution tool is asked for; a tool kernelgate cannot run is a 400."""
        found = False
        for index, tool in enumerate(self.tools or ()):
            if tool.code_execution is not None:
                found = True
            unserved = [name for name in _UNSERVED if getattr(tool, name) is not None]
            if unserved:
                msg = f"kernelgate does not serve the {to_camel(unserved[0])} tool: it runs codeExecution offline."
                raise InvalidRequest(msg, f"tools[{index}]")
        return found

    def functions(self) -> list[FunctionTool]:
        declared = [d for tool in self.tools or () for d in tool.function_declarations or ()]
        return [
            FunctionTool(
                d.name,
                d.description,
                d.parameters_json_schema or _json_schema(d.parameters) or {"type": "object", "properties": {}},
            )
            for d in declared
        ]

    def choice(self) -> ToolChoice:
        config = self.tool_config.function_calling_config if self.tool_config else None
        if config is None or config.mode in (None, "AUTO", "VALIDATED", "MODE_UNSPECIFIED"):
            return ToolChoice("auto", tuple(config.allowed_function_names or ()) if config else ())
        if config.mode == "NONE":
            return ToolChoice("none")
        return ToolChoice("required", tuple(config.allowed_function_names or ()))

    def output_format(self) -> OutputFormat | None:
        config = self.generation_config
        if config is None or config.response_mime_type != "application/json":
            return None
        schema = config.response_json_schema or _json_schema(config.response_schema)
        return OutputFormat(schema=schema)

    def sampling(self) -> Sampling:
        config = self.generation_config or GenerationConfig()
        return Sampling(temperature=config.temperature, top_p=config.top_p)

    def instructions(self) -> str | None:
        parts = self.system_instruction.parts if self.system_instruction else []
        return "\n".join(part.text for part in parts if part.text) or None


def _json_schema(schema: Any) -> dict[str, Any] | None:
    """Gemini's OpenAPI-style schema (`type: "OBJECT"`) as JSON Schema (`type: "object"`)."""
    if not isinstance(schema, dict):
        return None
    converted: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, str):
            converted[key] = value.lower()
        elif isinstance(value, dict):
            converted[key] = (
                {name: _json_schema(sub) for name, sub in value.items()} if key == "properties" else _json_schema(value)
            )
        elif isinstance(value, list):
            converted[key] = [_json_schema(sub) if isinstance(sub, dict) else sub for sub in value]
        else:
            converted[key] = value
    return converted


@dataclass
class ParsedContents:
    items: list[Item | ItemReference] = field(default_factory=list)
    files: list[InlineFile] = field(default_factory=list)


_OUTCOMES = {"OUTCOME_OK": CallStatus.COMPLETED, "OUTCOME_FAILED": CallStatus.COMPLETED}


def parse_contents(contents: list[Content]) -> ParsedContents:
    parsed = ParsedContents()
    calls: dict[str, list[str]] = {}  # function name -> call ids not yet answered, for responses without ids
    for index, content in enumerate(contents):
        where = f"contents[{index}]"
        if content.role == "model":
            _model_turn(content, where, parsed, calls)
        else:
            _user_turn(content, where, parsed, calls)
    return parsed


def _user_turn(content: Content, where: str, parsed: ParsedContents, calls: dict[str, list[str]]) -> None:
    texts: list[str] = []
    images: list[str] = []
    for number, part in enumerate(content.parts):
        if part.text is not None and not part.thought:
            texts.append(part.text)
        elif part.inline_data is not None:
            _inline(part.inline_data, f"{where}.parts[{number}].inlineData", parsed, images)
        elif part.file_data is not None:
            msg = "kernelgate does not fetch fileData: the gateway stays offline. Send the file as inlineData."
            raise InvalidRequest(msg, f"{where}.parts[{number}].fileData")
        elif part.function_response is not None:
            response = part.function_response
            waiting = calls.get(response.name) or []
            call_id = response.id or (waiting[0] if waiting else f"call_{response.name}")
            if call_id in waiting:
                waiting.remove(call_id)
            output = response.response or {}
            text = output["output"] if isinstance(output.get("output"), str) else json.dumps(output)
            parsed.items.append(FunctionOutput(call_id=call_id, output=str(text)))
    if texts or images:
        parsed.items.append(UserMessage(text="\n".join(texts), images=tuple(images), id=new_hex_id("msg_", 48)))


def _inline(blob: Blob, where: str, parsed: ParsedContents, images: list[str]) -> None:
    try:
        data = base64.b64decode(blob.data, validate=True)
    except (binascii.Error, ValueError) as exc:
        msg = "inlineData.data must be base64."
        raise InvalidRequest(msg, f"{where}.data") from exc
    if blob.mime_type.startswith("image/"):
        images.append(data_url(blob.mime_type, blob.data))
    # Every file goes to /mnt/data too, as the hosted tool's code sees its inputs.
    extension = mimetypes.guess_extension(blob.mime_type) or ""
    name = blob.display_name or f"input-{hashlib.sha256(data).hexdigest()[:12]}{extension}"
    parsed.files.append(InlineFile(name, data))


def _model_turn(content: Content, where: str, parsed: ParsedContents, calls: dict[str, list[str]]) -> None:
    texts: list[str] = []
    code: ExecutableCode | None = None
    for part in content.parts:
        if part.text is not None and not part.thought:
            texts.append(part.text)
            continue
        if texts and (part.executable_code or part.function_call):
            parsed.items.append(AssistantMessage(id=new_hex_id("msg_", 48), text="".join(texts)))
            texts = []
        signature = base64.b64decode(part.thought_signature) if part.thought_signature else None
        if part.executable_code is not None:
            code = part.executable_code
        elif part.code_execution_result is not None and code is not None:
            parsed.items.append(_replayed(code, part.code_execution_result, where))
            code = None
        elif part.function_call is not None:
            call = part.function_call
            call_id = call.id or f"call_{call.name}_{new_hex_id('', 8)}"
            calls.setdefault(call.name, []).append(call_id)
            arguments = json.dumps(call.args or {})
            parsed.items.append(
                FunctionCall(
                    id=new_hex_id("fc_", 48), call_id=call_id, name=call.name, arguments=arguments, signature=signature
                )
            )
    if texts:
        parsed.items.append(AssistantMessage(id=new_hex_id("msg_", 48), text="".join(texts)))


def _replayed(code: ExecutableCode, result: CodeExecutionResult, where: str) -> Item | ItemReference:
    """A code call from history: kernelgate's own is found again by id (with its container)."""
    status = _OUTCOMES.get(result.outcome or "OUTCOME_OK", CallStatus.INCOMPLETE)
    written = CodeCall(
        id=code.id or new_hex_id("ci_", 48),
        code=code.code,
        container_id="",
        status=status,
        logs=result.output or "",
        raised=result.outcome == "OUTCOME_FAILED",
    )
    return ItemReference(code.id, where, fallback=written) if code.id else written
