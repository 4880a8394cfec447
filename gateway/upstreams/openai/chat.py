"""Models behind an OpenAI-compatible Chat Completions server (OpenAI, Ollama, vLLM, llama.cpp, LM Studio).

The python tool is a function tool; its calls come back to the tool loop as plain code, streamed, and
their results go back to the model as tool messages. The openai SDK is the client: it brings streaming,
timeouts and retries with backoff.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from openai import Omit, omit
from openai.types.chat import (
    ChatCompletionContentPartParam,
    ChatCompletionFunctionToolParam,
    ChatCompletionMessageParam,
    ChatCompletionMessageToolCallParam,
    ChatCompletionToolChoiceOptionParam,
    completion_create_params,
)
from openai.types.shared_params import FunctionDefinition
from openai.types.shared_params.response_format_json_schema import JSONSchema

from ...conversation.items import (
    AssistantMessage,
    CodeCall,
    FunctionCall,
    FunctionOutput,
    Item,
    SystemMessage,
    UserMessage,
)
from ...conversation.model import (
    CodeDelta,
    FunctionTool,
    ModelEvent,
    OutputFormat,
    Stopped,
    TextDelta,
    ToolChoice,
    Turn,
    Usage,
)
from ..python_tool import IMAGES_NOTE, NO_IMAGES_NOTE, ToolCall, forced_name, offered, result_for_model, sandbox_call
from .client import OpenAIClient, OpenAIModel, given, image_urls, upstream_errors

__all__ = ["ChatModel", "ChatUpstream", "function_tool"]


def chat_messages(turn: Turn, vision: bool = False) -> list[ChatCompletionMessageParam]:
    """The conversation as Chat Completions messages; with `vision`, a call's images follow its result."""
    messages: list[ChatCompletionMessageParam] = []
    if turn.instructions:
        messages.append({"role": "system", "content": turn.instructions})
    for item in turn.items:
        messages.extend(_messages_of(item, vision))
        if vision and isinstance(item, CodeCall) and item.images:
            parts: list[ChatCompletionContentPartParam] = [{"type": "text", "text": IMAGES_NOTE}]
            parts += [{"type": "image_url", "image_url": {"url": url}} for url in image_urls(item)]
            messages.append({"role": "user", "content": parts})
    return messages


def _messages_of(item: Item, vision: bool) -> list[ChatCompletionMessageParam]:
    if isinstance(item, UserMessage):
        return [_user(item, vision)]
    if isinstance(item, SystemMessage):
        return [{"role": "system", "content": item.text}]
    if isinstance(item, AssistantMessage):
        return [{"role": "assistant", "content": item.text}]
    if isinstance(item, FunctionCall):
        function_call = _tool_call(item.call_id, item.name, item.arguments)
        return [{"role": "assistant", "content": None, "tool_calls": [function_call]}]
    if isinstance(item, FunctionOutput):
        return [{"role": "tool", "tool_call_id": item.call_id, "content": item.output}]
    name, arguments = sandbox_call(item)
    python_call = _tool_call(item.id, name, json.dumps(arguments))
    return [
        {"role": "assistant", "content": None, "tool_calls": [python_call]},
        {"role": "tool", "tool_call_id": item.id, "content": result_for_model(item)},
    ]


def _user(message: UserMessage, vision: bool) -> ChatCompletionMessageParam:
    if not message.images:
        return {"role": "user", "content": message.text}
    if not vision:
        note = NO_IMAGES_NOTE.format(count=len(message.images))
        return {"role": "user", "content": f"{message.text}\n\n{note}"}
    parts: list[ChatCompletionContentPartParam] = [{"type": "text", "text": message.text}] if message.text else []
    parts += [{"type": "image_url", "image_url": {"url": url}} for url in message.images]
    return {"role": "user", "content": parts}


def tool_choice(choice: ToolChoice) -> ChatCompletionToolChoiceOptionParam:
    forced = forced_name(choice)
    if forced is not None:
        return {"type": "function", "function": {"name": forced}}
    if choice.names and choice.mode != "none":
        tools: list[dict[str, object]] = [{"type": "function", "function": {"name": name}} for name in choice.names]
        return {"type": "allowed_tools", "allowed_tools": {"mode": choice.mode, "tools": tools}}
    return choice.mode


def response_format(output: OutputFormat | None) -> completion_create_params.ResponseFormat | Omit:
    if output is None:
        return omit
    if output.schema is None:
        return {"type": "json_object"}
    schema: JSONSchema = {"name": output.name, "schema": output.schema}
    if output.description:
        schema["description"] = output.description
    if output.strict is not None:
        schema["strict"] = output.strict
    return {"type": "json_schema", "json_schema": schema}


def _tool_call(call_id: str, name: str, arguments: str) -> ChatCompletionMessageToolCallParam:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def function_tool(tool: FunctionTool) -> ChatCompletionFunctionToolParam:
    function: FunctionDefinition = {"name": tool.name, "parameters": tool.parameters}
    if tool.description:
        function["description"] = tool.description
    return {"type": "function", "function": function}


class ChatModel(OpenAIModel):
    async def respond(self, turn: Turn) -> AsyncIterator[ModelEvent]:
        functions = {f.name for f in turn.functions}
        with upstream_errors():
            answer = await self._client.chat.completions.create(
                model=self._upstream_model,
                messages=chat_messages(turn, self._vision),
                tools=[function_tool(tool) for tool in offered(turn)] or omit,
                tool_choice=tool_choice(turn.tool_choice) if offered(turn) else omit,
                parallel_tool_calls=False if offered(turn) else omit,
                response_format=response_format(turn.output_format),
                stream=self._stream,
                stream_options={"include_usage": True} if self._stream else omit,
                # Local servers (Ollama, llama.cpp) know max_tokens; not all know max_completion_tokens.
                max_tokens=turn.max_output_tokens or omit,
                temperature=given(turn.sampling.temperature),
                top_p=given(turn.sampling.top_p),
            )
            events = self._events(answer, functions) if self._stream else _whole(answer, functions)
            async for event in events:
                yield event

    async def _events(self, stream: Any, functions: set[str]) -> AsyncIterator[ModelEvent]:
        calls: dict[int, _ChatToolCall] = {}
        stopped: Stopped | None = None
        async for chunk in stream:
            if chunk.usage is not None:
                yield Usage(chunk.usage.prompt_tokens or 0, chunk.usage.completion_tokens or 0)
            for choice in chunk.choices:
                delta = choice.delta
                stopped = stopped or _stopped(choice.finish_reason)
                if delta.content:
                    yield TextDelta(delta.content)
                for tool_call in delta.tool_calls or ():
                    call = calls.setdefault(tool_call.index, _ChatToolCall(f"call_{tool_call.index}"))
                    code = call.add(tool_call.id, tool_call.function)
                    if code:
                        yield CodeDelta(code, call.tool)
        if stopped is not None:
            yield stopped
            return
        for _, call in sorted(calls.items()):
            for event in call.finish(functions):
                yield event


class _ChatToolCall(ToolCall):
    def add(self, call_id: str | None, function: Any) -> str:
        """Take a Chat Completions fragment; return the code it adds (python only)."""
        self.call_id = call_id or self.call_id
        if function is None:
            return ""
        self.name = function.name or self.name
        return self.feed(function.arguments or "")


async def _whole(completion: Any, functions: set[str]) -> AsyncIterator[ModelEvent]:
    """A non-streamed completion as the same events, for upstreams that do not stream."""
    if completion.usage is not None:
        yield Usage(completion.usage.prompt_tokens or 0, completion.usage.completion_tokens or 0)
    for choice in completion.choices[:1]:
        if choice.message.content:
            yield TextDelta(choice.message.content)
        stopped = _stopped(choice.finish_reason)
        if stopped is not None:
            yield stopped
            return
        for tool_call in choice.message.tool_calls or ():
            call = ToolCall(tool_call.id, tool_call.function.name)
            call.add_whole(tool_call.function.arguments)
            for event in call.finish(functions):
                yield event


def _stopped(finish_reason: str | None) -> Stopped | None:
    if finish_reason == "length":
        return Stopped("max_output_tokens")
    if finish_reason == "content_filter":
        return Stopped("content_filter")
    return None


class ChatUpstream(OpenAIClient):
    model_class = ChatModel
