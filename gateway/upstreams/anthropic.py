"""Models behind Anthropic's Messages API (Claude), with the python tool as a custom tool.

The code runs in kernelgate's sandbox, not Anthropic's: the model gets a custom `python` tool
(`input_schema`), its `tool_use` input streams back as `input_json_delta` fragments that are decoded to
plain code as they come, and each result goes back as a `tool_result` block, with the figures the code
displayed as image blocks inside it. The anthropic SDK is the client: it brings the `x-api-key` and
`anthropic-version` headers, typed stream events, timeouts and retries with backoff (honouring
`retry-after`).
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import anthropic
import httpx2

from ..conversation.items import (
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
from ..conversation.model import (
    CodeDelta,
    FunctionTool,
    Model,
    ModelError,
    ModelEvent,
    OutputFormat,
    Stopped,
    TextDelta,
    ToolChoice,
    Turn,
    Usage,
)
from .providers import Provider
from .python_tool import (
    NO_IMAGES_NOTE,
    ToolCall,
    arguments_object,
    forced_name,
    offered,
    result_for_model,
    sandbox_call,
)

__all__ = ["AnthropicModel", "AnthropicUpstream", "anthropic_messages"]

DEFAULT_MAX_TOKENS = 8192
"""Anthropic needs `max_tokens`; every current Claude model can write this many in one turn."""

_STOPS: dict[str, Stopped] = {
    "max_tokens": Stopped("max_output_tokens"),
    "model_context_window_exceeded": Stopped("max_output_tokens"),
    "refusal": Stopped("content_filter"),
}


class AnthropicUpstream:
    def __init__(self, provider: Provider, timeout: float, http_client: httpx2.AsyncClient | None) -> None:
        self._provider = provider
        key = provider.api_key or "unused"
        self._client = anthropic.AsyncAnthropic(
            base_url=provider.base_url,
            api_key=key,
            # The SDK sends the key as a bearer token; x-api-key is the Messages API's documented header,
            # the one Anthropic-compatible proxies and gateways look for.
            default_headers={"x-api-key": key},
            timeout=timeout,
            max_retries=2,
            http_client=http_client,
        )

    def model(self, name: str, upstream_model: str) -> Model:
        return AnthropicModel(name, upstream_model, self._client, self._provider)

    async def aclose(self) -> None:
        await self._client.close()


def _tool(function: FunctionTool) -> dict[str, Any]:
    tool: dict[str, Any] = {"name": function.name, "input_schema": function.parameters}
    if function.description:
        tool["description"] = function.description
    return tool


def anthropic_messages(turn: Turn, images: bool) -> list[dict[str, Any]]:
    """The conversation as Messages API messages, consecutive blocks of one role merged into one message."""
    messages: list[dict[str, Any]] = []
    for item in turn.items:
        for role, blocks in _blocks_of(item, images):
            if not blocks:
                continue
            if messages and messages[-1]["role"] == role:
                messages[-1]["content"].extend(blocks)
            else:
                messages.append({"role": role, "content": blocks})
    return messages


def _text(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": text}] if text.strip() else []  # the API refuses empty text blocks


def _blocks_of(item: Item, images: bool) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    if isinstance(item, UserMessage):
        yield "user", _user(item, images)
    elif isinstance(item, SystemMessage):
        yield "user", _text(item.text)  # not reached: the loop moves system messages into `system`
    elif isinstance(item, AssistantMessage):
        yield "assistant", _text(item.text)
    elif isinstance(item, FunctionCall):
        yield "assistant", [_tool_use(item.call_id, item.name, arguments_object(item.arguments))]
    elif isinstance(item, FunctionOutput):
        yield "user", [{"type": "tool_result", "tool_use_id": item.call_id, "content": item.output}]
    else:
        assert isinstance(item, CodeCall)
        yield "assistant", [_tool_use(item.id, *sandbox_call(item))]
        yield "user", [_tool_result(item, images)]


def _user(message: UserMessage, images: bool) -> list[dict[str, Any]]:
    if message.images and not images:
        return _text(f"{message.text}\n\n{NO_IMAGES_NOTE.format(count=len(message.images))}")
    return [*_text(message.text), *(_image(url) for url in message.images)]


def _image(url: str) -> dict[str, Any]:
    """An image block: a data URL's bytes inline, any other URL by reference."""
    inline = split_data_url(url)
    if inline is not None:
        return {"type": "image", "source": {"type": "base64", "media_type": inline[0], "data": inline[1]}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def tool_choice(choice: ToolChoice) -> dict[str, Any]:
    """Anthropic's tool_choice; one call at a time, as the hosted tool runs them (each result seen first)."""
    if choice.mode == "none":
        return {"type": "none"}
    forced = forced_name(choice)
    if forced is not None:
        return {"type": "tool", "name": forced, "disable_parallel_tool_use": True}
    return {"type": "any" if choice.mode == "required" else "auto", "disable_parallel_tool_use": True}


def output_config(output: OutputFormat) -> dict[str, Any]:
    schema = output.schema if output.schema is not None else {"type": "object"}
    return {"format": {"type": "json_schema", "schema": schema}}


def _tool_use(call_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": call_id, "name": name, "input": arguments}


def _tool_result(call: CodeCall, images: bool) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "text", "text": result_for_model(call, images_attached=images)}]
    if images:
        content.extend(
            {
                "type": "image",
                "source": {"type": "base64", "media_type": "image/png", "data": base64.b64encode(png).decode()},
            }
            for png in call.images
        )
    result = {"type": "tool_result", "tool_use_id": call.id, "content": content}
    return {**result, "is_error": True} if call.status != CallStatus.COMPLETED else result


@contextmanager
def _upstream_errors() -> Iterator[None]:
    """The anthropic SDK's errors (raised after its retries) as ModelError, with the upstream's status."""
    try:
        yield
    except anthropic.APIStatusError as exc:
        # An `error` event inside a 200 stream (overloaded_error, say) carries the stream's status.
        raise ModelError.failed(exc.status_code if exc.status_code >= 400 else 502, exc.message, exc.response) from exc
    except (anthropic.APIConnectionError, anthropic.APITimeoutError) as exc:
        raise ModelError.unreachable(exc.message, isinstance(exc, anthropic.APITimeoutError)) from exc
    except (anthropic.AnthropicError, ValueError) as exc:  # a body the SDK could not parse, a bad event
        raise ModelError.unreadable(exc) from exc


class AnthropicModel:
    def __init__(self, name: str, upstream_model: str, client: anthropic.AsyncAnthropic, provider: Provider) -> None:
        self.name = name
        self._upstream_model = upstream_model
        self._client = client
        self._stream = provider.stream
        self._images = provider.takes_images
        self._max_tokens = provider.max_output_tokens or DEFAULT_MAX_TOKENS

    def _request(self, turn: Turn) -> dict[str, Any]:
        request: dict[str, Any] = {
            "model": self._upstream_model,
            "max_tokens": turn.max_output_tokens or self._max_tokens,
            "messages": anthropic_messages(turn, self._images),
        }
        tools = offered(turn)
        if tools:
            request["tools"] = [_tool(f) for f in tools]
            request["tool_choice"] = tool_choice(turn.tool_choice)
        if turn.output_format is not None:
            request["output_config"] = output_config(turn.output_format)
        if turn.instructions:
            request["system"] = turn.instructions
        # No temperature or top_p: the Messages API no longer takes sampling settings (SDK 2.x).
        return request

    async def respond(self, turn: Turn) -> AsyncIterator[ModelEvent]:
        functions = {f.name for f in turn.functions}
        with _upstream_errors():
            answer = await self._client.messages.create(**self._request(turn), stream=self._stream)
            if isinstance(answer, anthropic.types.Message):
                events = _whole(answer, functions)
            else:
                events = _stream_events(answer, functions)
            async for event in events:
                yield event


async def _stream_events(
    stream: AsyncIterator[anthropic.types.RawMessageStreamEvent], functions: set[str]
) -> AsyncIterator[ModelEvent]:
    reader = _StreamReader()
    async for event in stream:
        for model_event in reader.on(event):
            yield model_event
    for model_event in reader.end(functions):
        yield model_event


class _StreamReader:
    """The stream's events as the loop's: text and code as they come, calls once the message has ended.

    A call is held until `message_delta` says why the message stopped: cut at `max_tokens`, its input
    may be half written, and it must not run.
    """

    def __init__(self) -> None:
        self._calls: dict[int, ToolCall] = {}
        self._finished: list[ToolCall] = []
        self._input_tokens = self._output_tokens = 0
        self._stop_reason: str | None = None
        self._ended = False

    def on(self, event: anthropic.types.RawMessageStreamEvent) -> list[ModelEvent]:
        if event.type == "message_start":
            self._input_tokens = _input_tokens(event.message.usage)
        elif event.type == "content_block_start":
            return self._block_started(event)
        elif event.type == "content_block_delta":
            return self._block_delta(event)
        elif event.type == "content_block_stop" and event.index in self._calls:
            self._finished.append(self._calls.pop(event.index))
        elif event.type == "message_delta":
            self._stop_reason = event.delta.stop_reason
            if event.usage.input_tokens is not None:
                self._input_tokens = _input_tokens(event.usage)
            self._output_tokens = event.usage.output_tokens
        elif event.type == "message_stop":
            self._ended = True
        return []

    def _block_started(self, event: anthropic.types.RawContentBlockStartEvent) -> list[ModelEvent]:
        block = event.content_block
        if block.type == "tool_use":
            self._calls[event.index] = ToolCall(block.id, block.name)
        return [TextDelta(block.text)] if block.type == "text" and block.text else []

    def _block_delta(self, event: anthropic.types.RawContentBlockDeltaEvent) -> list[ModelEvent]:
        delta = event.delta
        if delta.type == "text_delta" and delta.text:
            return [TextDelta(delta.text)]
        if delta.type == "input_json_delta" and event.index in self._calls:
            call = self._calls[event.index]
            code = call.feed(delta.partial_json)
            return [CodeDelta(code, call.tool)] if code else []
        return []

    def end(self, functions: set[str]) -> list[ModelEvent]:
        if not self._ended:  # the SDK skips what it cannot read; a stream cut short has no message_stop
            msg = "the stream ended before message_stop."
            raise ModelError.unreadable(msg)
        usage = Usage(self._input_tokens, self._output_tokens)
        return [usage, *_ending(self._stop_reason, self._finished, functions)]


def _input_tokens(usage: anthropic.types.Usage | anthropic.types.MessageDeltaUsage) -> int:
    """Input tokens, cached or not: Anthropic counts cache writes and reads apart from `input_tokens`."""
    parts = (usage.input_tokens, usage.cache_creation_input_tokens, usage.cache_read_input_tokens)
    return sum(part or 0 for part in parts)


def _ending(stop_reason: str | None, calls: list[ToolCall], functions: set[str]) -> list[ModelEvent]:
    stopped = _STOPS.get(stop_reason or "")
    if stopped is not None:
        return [stopped]
    return [event for call in calls for event in call.finish(functions)]


async def _whole(message: anthropic.types.Message, functions: set[str]) -> AsyncIterator[ModelEvent]:
    """A non-streamed message as the same events."""
    yield Usage(_input_tokens(message.usage), message.usage.output_tokens)
    calls = []
    for block in message.content:
        if block.type == "text" and block.text:
            yield TextDelta(block.text)
        elif block.type == "tool_use":
            call = ToolCall(block.id, block.name)
            call.add_whole(json.dumps(block.input))
            calls.append(call)
    for event in _ending(message.stop_reason, calls, functions):
        yield event
