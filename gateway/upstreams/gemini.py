"""Models behind Google's Gemini API, with the python tool as a function declaration.

The code runs in kernelgate's sandbox, not Gemini's: the model gets a `python` function declaration,
its `functionCall` parts come back whole (Gemini streams text, never call arguments), and each result
goes back as a `functionResponse` part, followed by the figures the code displayed as `inlineData`
parts. A call's thought signature (Gemini 3) is kept with the call and sent back with it, as the API
requires. The google-genai SDK is the client: it brings the `x-goog-api-key` header, typed answers,
timeouts and retries with backoff.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager

import httpx2
from google import genai
from google.genai import errors, types

from .._ids import new_hex_id
from ..conversation.items import (
    AssistantMessage,
    CodeCall,
    FunctionCall,
    FunctionOutput,
    Item,
    SystemMessage,
    UserMessage,
    split_data_url,
)
from ..conversation.model import (
    FunctionTool,
    Model,
    ModelError,
    ModelEvent,
    Stopped,
    TextDelta,
    ToolChoice,
    Turn,
    Usage,
)
from .providers import Provider
from .python_tool import (
    IMAGES_NOTE,
    NO_IMAGES_NOTE,
    ToolCall,
    arguments_object,
    function_names,
    offered,
    result_for_model,
    sandbox_call,
)

__all__ = ["GeminiModel", "GeminiUpstream", "gemini_contents"]

_CUT = {"MAX_TOKENS": Stopped("max_output_tokens")}
_FILTERED = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"}
_BROKEN_CALLS = {"MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS"}


class GeminiUpstream:
    def __init__(self, provider: Provider, timeout: float, http_client: httpx2.AsyncClient | None) -> None:
        self._provider = provider
        self._http_client = http_client
        options = types.HttpOptions(
            base_url=provider.base_url,
            api_version="v1beta",
            timeout=int(timeout * 1000),
            # Two retries with backoff, as the other upstreams get from their SDKs.
            retry_options=types.HttpRetryOptions(attempts=3, initial_delay=0.5, max_delay=8.0),
            httpx_async_client=http_client,
        )
        self._client = genai.Client(api_key=provider.api_key or "unused", vertexai=False, http_options=options)

    def model(self, name: str, upstream_model: str) -> Model:
        return GeminiModel(name, upstream_model, self._client.aio, self._provider)

    async def aclose(self) -> None:
        await self._client.aio.aclose()
        if self._http_client is not None:
            await self._http_client.aclose()


def _declaration(function: FunctionTool) -> types.FunctionDeclaration:
    # parametersJsonSchema takes JSON Schema as clients write it; `parameters` takes only a subset.
    return types.FunctionDeclaration(
        name=function.name, description=function.description, parameters_json_schema=function.parameters
    )


def gemini_contents(items: Sequence[Item], images: bool) -> list[types.Content]:
    """The conversation as Gemini contents: `user` and `model` turns, one role's parts merged per turn.

    Calls the model made side by side (Gemini 3 signs only the first) go back in one model turn, their
    responses in one user turn, as the API checks; every other call is its own step.
    """
    contents: list[types.Content] = []
    names = function_names(items)
    step_open = False
    for item in items:
        joins_step = step_open and isinstance(item, CodeCall | FunctionCall) and item.signature is None
        for role, parts in _parts_of(item, images, names):
            if contents and (contents[-1].role == role or joins_step):
                target = contents[-1] if contents[-1].role == role else contents[-2]
                _add(target, parts)
            else:
                contents.append(types.Content(role=role, parts=parts))
        if isinstance(item, CodeCall | FunctionCall):
            step_open = step_open if joins_step else item.signature is not None
        else:
            step_open = False
    return contents


def _add(content: types.Content, parts: list[types.Part]) -> None:
    """Add parts to a turn; a joined call's response goes with the other responses, before any images."""
    assert content.parts is not None
    at = len(content.parts)
    if content.role == "user" and parts and parts[0].function_response is not None:
        at = next((i for i, part in enumerate(content.parts) if part.function_response is None), at)
    content.parts[at:at] = parts


def _parts_of(item: Item, images: bool, names: dict[str, str]) -> Iterator[tuple[str, list[types.Part]]]:
    if isinstance(item, UserMessage):
        yield "user", _user_parts(item, images)
    elif isinstance(item, SystemMessage | AssistantMessage):  # (the loop moves system messages to the instructions)
        if item.text:  # the API refuses empty text parts
            yield "user" if isinstance(item, SystemMessage) else "model", [types.Part(text=item.text)]
    elif isinstance(item, FunctionCall):
        call = types.FunctionCall(name=item.name, args=arguments_object(item.arguments))
        yield "model", [types.Part(function_call=call, thought_signature=item.signature)]
    elif isinstance(item, FunctionOutput):
        name = names.get(item.call_id, item.call_id)
        response = types.FunctionResponse(name=name, response={"output": item.output})
        yield "user", [types.Part(function_response=response)]
    else:
        assert isinstance(item, CodeCall)
        name, arguments = sandbox_call(item)
        call = types.FunctionCall(name=name, args=dict(arguments))
        yield "model", [types.Part(function_call=call, thought_signature=item.signature)]
        yield "user", _response_parts(item, images)


def _user_parts(message: UserMessage, images: bool) -> list[types.Part]:
    text = message.text
    if message.images and not images:
        text = f"{text}\n\n{NO_IMAGES_NOTE.format(count=len(message.images))}"
    parts = [types.Part(text=text)] if text else []
    if images:
        parts.extend(_image(url) for url in message.images)
    return parts


def _image(url: str) -> types.Part:
    """A data URL's bytes inline; any other URL by reference."""
    inline = split_data_url(url)
    if inline is not None:
        return types.Part(inline_data=types.Blob(mime_type=inline[0], data=base64.b64decode(inline[1])))
    return types.Part(file_data=types.FileData(file_uri=url))


def tool_config(choice: ToolChoice) -> types.ToolConfig:
    mode = {"auto": "AUTO", "none": "NONE", "required": "ANY"}[choice.mode]
    allowed = list(choice.names) if choice.names and choice.mode != "none" else None
    return types.ToolConfig(
        function_calling_config=types.FunctionCallingConfig(
            mode=types.FunctionCallingConfigMode(mode), allowed_function_names=allowed
        )
    )


def _response_parts(call: CodeCall, images: bool) -> list[types.Part]:
    output = {"output": result_for_model(call, images_attached=images)}
    parts = [types.Part(function_response=types.FunctionResponse(name=sandbox_call(call)[0], response=output))]
    if images and call.images:
        parts.append(types.Part(text=IMAGES_NOTE))
        parts.extend(types.Part(inline_data=types.Blob(mime_type="image/png", data=png)) for png in call.images)
    return parts


@contextmanager
def _upstream_errors() -> Iterator[None]:
    """The genai SDK's errors (raised after its retries) as ModelError, with the upstream's status."""
    try:
        yield
    except errors.APIError as exc:
        raise ModelError.failed(exc.code, exc.message or exc.status, exc.response) from exc
    except httpx2.TransportError as exc:  # the SDK leaves its HTTP library's errors as they are
        raise ModelError.unreachable(exc, isinstance(exc, httpx2.TimeoutException)) from exc
    except (ValueError, TypeError) as exc:  # a body the SDK could not parse (pydantic's errors are ValueErrors)
        raise ModelError.unreadable(exc) from exc


class GeminiModel:
    def __init__(self, name: str, upstream_model: str, client: genai.client.AsyncClient, provider: Provider) -> None:
        self.name = name
        self._upstream_model = upstream_model
        self._client = client
        self._stream = provider.stream
        self._images = provider.takes_images
        self._max_tokens = provider.max_output_tokens

    def _config(self, turn: Turn) -> types.GenerateContentConfig:
        declarations = [_declaration(f) for f in offered(turn)]
        output = turn.output_format
        return types.GenerateContentConfig(
            system_instruction=turn.instructions,
            tools=[types.Tool(function_declarations=declarations)] if declarations else None,
            tool_config=tool_config(turn.tool_choice) if declarations else None,
            response_mime_type="application/json" if output is not None else None,
            response_json_schema=output.schema if output is not None else None,
            max_output_tokens=turn.max_output_tokens or self._max_tokens,
            temperature=turn.sampling.temperature,
            top_p=turn.sampling.top_p,
            # The declarations are not Python callables: the SDK must not try to call them itself.
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        )

    async def respond(self, turn: Turn) -> AsyncIterator[ModelEvent]:
        functions = {f.name for f in turn.functions}
        contents = gemini_contents(turn.items, self._images)
        with _upstream_errors():
            if self._stream:
                chunks = await self._client.models.generate_content_stream(
                    model=self._upstream_model, contents=contents, config=self._config(turn)
                )
            else:
                answer = await self._client.models.generate_content(
                    model=self._upstream_model, contents=contents, config=self._config(turn)
                )
                chunks = _one(answer)
            async for event in _events(chunks, functions):
                yield event


async def _one(answer: types.GenerateContentResponse) -> AsyncIterator[types.GenerateContentResponse]:
    yield answer


async def _events(
    chunks: AsyncIterator[types.GenerateContentResponse], functions: set[str]
) -> AsyncIterator[ModelEvent]:
    """Text as it comes; the calls, which arrive whole, once the answer has ended and was not cut."""
    calls: list[ToolCall] = []
    usage: types.GenerateContentResponseUsageMetadata | None = None
    finish: str | None = None
    async for chunk in chunks:
        usage = chunk.usage_metadata or usage  # each chunk repeats the running totals
        if chunk.prompt_feedback is not None and chunk.prompt_feedback.block_reason is not None:
            finish = "SAFETY"
        for candidate in (chunk.candidates or [])[:1]:
            finish = _name(candidate.finish_reason) or finish
            for part in (candidate.content.parts if candidate.content else None) or []:
                if part.function_call is not None:
                    calls.append(_call_of(part))
                elif part.text and not part.thought:
                    yield TextDelta(part.text)
    if finish is None:  # every answer ends with a finish reason; one without was cut short
        msg = "the answer ended without a finish reason."
        raise ModelError.unreadable(msg)
    if usage is not None:
        yield _usage(usage)
    for event in _ending(finish, calls, functions):
        yield event


def _call_of(part: types.Part) -> ToolCall:
    assert part.function_call is not None
    call_id = part.function_call.id or new_hex_id("call_", 24)  # the Gemini API gives none
    call = ToolCall(call_id, part.function_call.name or "", part.thought_signature)
    call.add_whole(json.dumps(part.function_call.args or {}))
    return call


def _name(reason: object) -> str | None:
    return None if reason is None else str(getattr(reason, "value", reason))


def _usage(usage: types.GenerateContentResponseUsageMetadata) -> Usage:
    # Thinking tokens are output, as OpenAI counts reasoning tokens; tool-use prompt tokens are input.
    prompt = (usage.prompt_token_count or 0) + (usage.tool_use_prompt_token_count or 0)
    return Usage(prompt, (usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0))


def _ending(finish: str | None, calls: list[ToolCall], functions: set[str]) -> list[ModelEvent]:
    if finish in _CUT:
        return [_CUT[finish]]
    if finish in _FILTERED:
        return [Stopped("content_filter")]
    if finish in _BROKEN_CALLS:
        msg = f"The upstream model wrote a tool call it could not finish (Gemini finish reason {finish})."
        raise ModelError(msg, 502)
    return [event for call in calls for event in call.finish(functions)]
