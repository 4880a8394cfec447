"""Models behind an OpenAI-compatible Chat Completions server (OpenAI, Ollama, vLLM, llama.cpp, LM Studio).

The hosted `code_interpreter` tool becomes a plain function tool, `python`, described as the hosted one
is; its calls come back to the tool loop as plain code, streamed, and their results go back to the model
as tool messages. The openai SDK is the client: it brings streaming, timeouts and retries with backoff.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import openai

from ._arguments import CodeArgumentDecoder, code_of
from ._conversation import AssistantMessage, CodeCall, FunctionCall, FunctionOutput, Item, UserMessage
from ._model import (
    CodeDelta,
    CodeReady,
    FunctionCallRequested,
    FunctionTool,
    ModelError,
    ModelEvent,
    TextDelta,
    Turn,
    Usage,
)

__all__ = ["ChatModel", "function_tool", "python_tool", "result_for_model", "upstream_errors"]

_LOG_LIMIT = 20_000


def python_tool(memory_limit: str) -> dict[str, Any]:
    description = (
        "Run Python code in a stateful Jupyter kernel (the python tool). Variables, imports and files persist "
        "between calls. The working directory is /mnt/data, where the user's files are and where files "
        "you write can be linked as [name](sandbox:/mnt/data/name). There is no internet access. Memory is "
        f"limited to {memory_limit}. The result is what the code printed, the value of its last expression "
        "and any traceback. Common data libraries (numpy, pandas, matplotlib, scipy, scikit-learn) are installed."
    )
    return {
        "type": "function",
        "function": {
            "name": "python",
            "description": description,
            "parameters": {
                "type": "object",
                "properties": {"code": {"type": "string", "description": "The Python code to run."}},
                "required": ["code"],
            },
        },
    }


def result_for_model(call: CodeCall) -> str:
    """The call's result as the model reads it: logs bounded in size, images and files named."""
    logs = call.logs
    if len(logs) > _LOG_LIMIT:
        cut = len(logs) - _LOG_LIMIT
        logs = f"{logs[: _LOG_LIMIT // 2]}\n[... {cut} characters cut ...]\n{logs[-_LOG_LIMIT // 2 :]}"
    parts = [logs or "(no output)"]
    if call.images:
        parts.append(f"[The code displayed {len(call.images)} image(s), shown to the user.]")
    if call.files:
        parts.append("Files written: " + ", ".join(f.path for f in call.files))
    return "\n".join(parts)


@contextmanager
def upstream_errors() -> Iterator[None]:
    """The openai SDK's errors (raised after its retries) as ModelError, with the upstream's status."""
    try:
        yield
    except openai.APIStatusError as exc:
        msg = f"The upstream model failed with {exc.status_code}: {exc.message}"
        raise ModelError(msg, exc.status_code) from exc
    except (openai.APIConnectionError, openai.APITimeoutError) as exc:
        msg = f"The upstream model could not be reached: {exc.message}"
        raise ModelError(msg, 504 if isinstance(exc, openai.APITimeoutError) else 502) from exc
    except (openai.OpenAIError, ValueError) as exc:  # a body the SDK could not parse, a bad event
        msg = f"The upstream model sent something kernelgate cannot read: {exc}"
        raise ModelError(msg, 502) from exc


def chat_messages(turn: Turn, vision: bool = False) -> list[dict[str, Any]]:
    """The conversation as Chat Completions messages; with `vision`, a call's images follow its result."""
    messages: list[dict[str, Any]] = []
    if turn.instructions:
        messages.append({"role": "system", "content": turn.instructions})
    for item in turn.items:
        messages.extend(_messages_of(item))
        if vision and isinstance(item, CodeCall) and item.images:
            parts = [{"type": "image_url", "image_url": {"url": url}} for url in image_urls(item)]
            messages.append({"role": "user", "content": [{"type": "text", "text": IMAGES_NOTE}, *parts]})
    return messages


IMAGES_NOTE = "The images the python call above displayed:"


def image_urls(call: CodeCall) -> list[str]:
    return ["data:image/png;base64," + base64.b64encode(png).decode() for png in call.images]


def _messages_of(item: Item) -> list[dict[str, Any]]:
    if isinstance(item, UserMessage):
        return [{"role": "user", "content": item.text}]
    if isinstance(item, AssistantMessage):
        return [{"role": "assistant", "content": item.text}]
    if isinstance(item, FunctionCall):
        function = {"name": item.name, "arguments": item.arguments}
        return [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": item.call_id, "type": "function", "function": function}],
            }
        ]
    if isinstance(item, FunctionOutput):
        return [{"role": "tool", "tool_call_id": item.call_id, "content": item.output}]
    call = {
        "id": item.id,
        "type": "function",
        "function": {"name": "python", "arguments": json.dumps({"code": item.code})},
    }
    return [
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": item.id, "content": result_for_model(item)},
    ]


def function_tool(tool: FunctionTool) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name, "parameters": tool.parameters}
    if tool.description:
        function["description"] = tool.description
    return {"type": "function", "function": function}


class ChatModel:
    def __init__(
        self, name: str, upstream_model: str, client: openai.AsyncOpenAI, *, stream: bool = True, vision: bool = False
    ) -> None:
        self.name = name
        self._upstream_model = upstream_model
        self._client = client
        self._stream = stream
        self._vision = vision

    async def respond(self, turn: Turn) -> AsyncIterator[ModelEvent]:
        functions = {f.name for f in turn.functions}
        with upstream_errors():
            answer = await self._client.chat.completions.create(  # type: ignore[call-overload]  # plain dicts in the SDK's TypedDict shapes
                model=self._upstream_model,
                messages=chat_messages(turn, self._vision),
                tools=[python_tool(turn.memory_limit), *map(function_tool, turn.functions)],
                parallel_tool_calls=False,
                stream=self._stream,
                **({"stream_options": {"include_usage": True}} if self._stream else {}),
            )
            events = self._events(answer, functions) if self._stream else _whole(answer, functions)
            async for event in events:
                yield event

    async def _events(self, stream: Any, functions: set[str]) -> AsyncIterator[ModelEvent]:
        calls: dict[int, _ToolCall] = {}
        async for chunk in stream:
            if chunk.usage is not None:
                yield Usage(chunk.usage.prompt_tokens or 0, chunk.usage.completion_tokens or 0)
            for choice in chunk.choices:
                delta = choice.delta
                if delta.content:
                    yield TextDelta(delta.content)
                for tool_call in delta.tool_calls or ():
                    call = calls.setdefault(tool_call.index, _ToolCall(f"call_{tool_call.index}"))
                    code = call.add(tool_call.id, tool_call.function)
                    if code:
                        yield CodeDelta(code)
        for _, call in sorted(calls.items()):
            for event in call.finish(functions):
                yield event


class _ToolCall:
    """One tool call as its stream fragments arrive; python's code is decoded as it comes."""

    def __init__(self, call_id: str) -> None:
        self.call_id = call_id
        self.name = ""
        self._raw: list[str] = []
        self._decoder = CodeArgumentDecoder()
        self._streamed = False

    def add(self, call_id: str | None, function: Any) -> str:
        """Take a fragment; return the code it adds (python only)."""
        self.call_id = call_id or self.call_id
        if function is None:
            return ""
        self.name = function.name or self.name
        if not function.arguments:
            return ""
        self._raw.append(function.arguments)
        code = self._decoder.feed(function.arguments) if self.name == "python" else ""
        self._streamed = self._streamed or bool(code)
        return code

    def add_whole(self, arguments: str) -> None:
        """The complete arguments at once (a non-streamed completion)."""
        self._raw.append(arguments)

    def finish(self, functions: set[str]) -> list[ModelEvent]:
        arguments = "".join(self._raw)
        if self.name in functions:
            return [FunctionCallRequested(self.call_id, self.name, arguments)]
        if self.name != "python":
            msg = f"The upstream model called a tool kernelgate does not know: {self.name!r}."
            raise ModelError(msg)
        if self._streamed:
            return [CodeReady()]
        return [CodeDelta(code_of(arguments)), CodeReady()]  # not JSON, or sent whole


async def _whole(completion: Any, functions: set[str]) -> AsyncIterator[ModelEvent]:
    """A non-streamed completion as the same events, for upstreams that do not stream."""
    if completion.usage is not None:
        yield Usage(completion.usage.prompt_tokens or 0, completion.usage.completion_tokens or 0)
    for choice in completion.choices[:1]:
        if choice.message.content:
            yield TextDelta(choice.message.content)
        for tool_call in choice.message.tool_calls or ():
            call = _ToolCall(tool_call.id)
            call.name = tool_call.function.name
            call.add_whole(tool_call.function.arguments)
            for event in call.finish(functions):
                yield event
