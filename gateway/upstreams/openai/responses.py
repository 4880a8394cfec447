"""Models behind OpenAI's Responses API, with the python tool as a plain function tool.

The same contract as `chat.py` (Chat Completions), over the other API: items go up as input items
(each code call as a function_call and its function_call_output), and the streamed events come back as
the tool loop's model events.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import openai
from openai.types.responses import (
    FunctionToolParam,
    ResponseFormatTextJSONSchemaConfigParam,
    ResponseInputContentParam,
    ResponseInputItemParam,
    ResponseTextConfigParam,
    response_create_params,
)

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
    CodeReady,
    FunctionCallRequested,
    FunctionTool,
    ModelError,
    ModelEvent,
    OutputFormat,
    Stopped,
    TextDelta,
    ToolChoice,
    Turn,
    Usage,
)
from ..arguments import CodeArgumentDecoder, code_of
from ..python_tool import (
    IMAGES_NOTE,
    NO_IMAGES_NOTE,
    SANDBOX_TOOLS,
    forced_name,
    offered,
    result_for_model,
    sandbox_call,
)
from .client import OpenAIClient, OpenAIModel, given, image_urls, upstream_errors

__all__ = ["ResponsesModel", "ResponsesUpstream"]


def _tool(function: FunctionTool) -> FunctionToolParam:
    """A function tool in the Responses API's flat shape."""
    tool: FunctionToolParam = {
        "type": "function",
        "name": function.name,
        "parameters": function.parameters,
        "strict": False,
    }
    if function.description:
        tool["description"] = function.description
    return tool


def input_items(turn: Turn, vision: bool = False) -> list[ResponseInputItemParam]:
    """The conversation as Responses input items; with `vision`, a call's images follow its output."""
    items: list[ResponseInputItemParam] = []
    for item in turn.items:
        items.extend(_items_of(item, vision))
        if vision and isinstance(item, CodeCall) and item.images:
            note: ResponseInputContentParam = {"type": "input_text", "text": IMAGES_NOTE}
            parts: list[ResponseInputContentParam] = [
                {"type": "input_image", "image_url": url, "detail": "auto"} for url in image_urls(item)
            ]
            items.append({"role": "user", "content": [note, *parts]})
    return items


def _items_of(item: Item, vision: bool) -> list[ResponseInputItemParam]:
    if isinstance(item, UserMessage):
        return [_user(item, vision)]
    if isinstance(item, SystemMessage):
        return [{"role": "developer", "content": item.text}]
    if isinstance(item, AssistantMessage):
        return [{"role": "assistant", "content": item.text}]
    if isinstance(item, FunctionCall):
        return [{"type": "function_call", "call_id": item.call_id, "name": item.name, "arguments": item.arguments}]
    if isinstance(item, FunctionOutput):
        return [{"type": "function_call_output", "call_id": item.call_id, "output": item.output}]
    assert isinstance(item, CodeCall)
    name, call_arguments = sandbox_call(item)
    arguments = json.dumps(call_arguments)
    return [
        {"type": "function_call", "call_id": item.id, "name": name, "arguments": arguments},
        {"type": "function_call_output", "call_id": item.id, "output": result_for_model(item)},
    ]


def _user(message: UserMessage, vision: bool) -> ResponseInputItemParam:
    if not message.images:
        return {"role": "user", "content": message.text}
    if not vision:
        return {"role": "user", "content": f"{message.text}\n\n{NO_IMAGES_NOTE.format(count=len(message.images))}"}
    parts: list[ResponseInputContentParam] = [{"type": "input_text", "text": message.text}] if message.text else []
    parts += [{"type": "input_image", "image_url": url, "detail": "auto"} for url in message.images]
    return {"role": "user", "content": parts}


def tool_choice(choice: ToolChoice) -> response_create_params.ToolChoice:
    forced = forced_name(choice)
    if forced is not None:
        return {"type": "function", "name": forced}
    if choice.names and choice.mode != "none":
        tools: list[dict[str, object]] = [{"type": "function", "name": name} for name in choice.names]
        return {"type": "allowed_tools", "mode": choice.mode, "tools": tools}
    return choice.mode


def text_format(output: OutputFormat | None) -> ResponseTextConfigParam | openai.Omit:
    if output is None:
        return openai.omit
    if output.schema is None:
        return {"format": {"type": "json_object"}}
    schema: ResponseFormatTextJSONSchemaConfigParam = {
        "type": "json_schema",
        "name": output.name,
        "schema": output.schema,
    }
    if output.description:
        schema["description"] = output.description
    if output.strict is not None:
        schema["strict"] = output.strict
    return {"format": schema}


class ResponsesModel(OpenAIModel):
    async def respond(self, turn: Turn) -> AsyncIterator[ModelEvent]:
        tools = [_tool(f) for f in offered(turn)]
        with upstream_errors():
            stream = await self._client.responses.create(
                model=self._upstream_model,
                instructions=turn.instructions,
                input=input_items(turn, self._vision),
                tools=tools or openai.omit,
                tool_choice=tool_choice(turn.tool_choice) if tools else openai.omit,
                parallel_tool_calls=False if tools else openai.omit,
                text=text_format(turn.output_format),
                store=False,
                stream=self._stream,
                max_output_tokens=turn.max_output_tokens if turn.max_output_tokens else openai.omit,
                temperature=given(turn.sampling.temperature),
                top_p=given(turn.sampling.top_p),
            )
            events = self._events(stream) if self._stream else _whole(stream)
            async for event in events:
                yield event

    async def _events(self, stream: Any) -> AsyncIterator[ModelEvent]:
        calls: dict[str, tuple[str, str, CodeArgumentDecoder]] = {}  # item id -> name, call id, decoder
        async for event in stream:
            kind = event.type
            if kind == "response.output_text.delta":
                yield TextDelta(event.delta)
            elif kind == "response.output_item.added" and event.item.type == "function_call":
                key = SANDBOX_TOOLS.get(event.item.name, ("code", "python"))[0]
                calls[event.item.id] = (event.item.name, event.item.call_id, CodeArgumentDecoder(key))
            elif kind == "response.function_call_arguments.delta" and event.item_id in calls:
                name, _, decoder = calls[event.item_id]
                code = decoder.feed(event.delta) if SANDBOX_TOOLS.get(name, ("",))[0] else ""
                if code:
                    yield CodeDelta(code, SANDBOX_TOOLS[name][1])
            elif kind == "response.output_item.done" and event.item.type == "function_call":
                for model_event in _finished_call(event.item, calls):
                    yield model_event
            elif kind in ("response.completed", "response.incomplete") and event.response.usage is not None:
                usage = event.response.usage
                yield Usage(usage.input_tokens, usage.output_tokens)
            if kind == "response.incomplete":
                yield _stopped(event.response)
            elif kind in ("response.failed", "error"):
                message = getattr(getattr(event, "response", None), "error", None) or event
                msg = f"The upstream model failed: {getattr(message, 'message', message)}"
                raise ModelError(msg)


def _finished_call(item: Any, calls: dict[str, tuple[str, str, CodeArgumentDecoder]]) -> list[ModelEvent]:
    name = item.name
    if name not in SANDBOX_TOOLS:
        return [FunctionCallRequested(item.call_id, name, item.arguments)]
    started = calls.get(item.id)
    events: list[ModelEvent] = []
    key, tool = SANDBOX_TOOLS[name]
    if started is None or not key or not item.arguments.lstrip().startswith("{"):  # no deltas, or whole input
        events.append(CodeDelta(code_of(item.arguments, key), tool))
    events.append(CodeReady())
    return events


async def _whole(response: Any) -> AsyncIterator[ModelEvent]:
    """A whole (stream: false) response as the same events; an incomplete one runs none of its calls."""
    for item in response.output:
        if item.type == "message":
            text = "".join(part.text for part in item.content if part.type == "output_text")
            if text:
                yield TextDelta(text)
        elif item.type == "function_call" and response.status != "incomplete":
            for event in _finished_call(item, {}):
                yield event
    if response.usage is not None:
        yield Usage(response.usage.input_tokens, response.usage.output_tokens)
    if response.status == "incomplete":
        yield _stopped(response)
    elif response.status == "failed":
        message = response.error.message if response.error is not None else "no reason given"
        msg = f"The upstream model failed: {message}"
        raise ModelError(msg)


def _stopped(response: Any) -> Stopped:
    details = response.incomplete_details
    reason = details.reason if details is not None else None
    return Stopped("content_filter" if reason == "content_filter" else "max_output_tokens")


class ResponsesUpstream(OpenAIClient):
    model_class = ResponsesModel
