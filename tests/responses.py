"""Typed views of what the openai SDK returns from kernelgate: the call items, their logs and images.

A Response's output is a union of every item type OpenAI has; each helper asserts the item is the
kind the test expects, so a test reads it with the SDK's own types and fails clearly when it is not.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import openai
from openai.types.responses import (
    Response,
    ResponseCodeInterpreterToolCall,
    ResponseFunctionToolCall,
    ResponseIncludable,
    ResponseInputItemParam,
    ResponseOutputMessage,
    ResponseOutputText,
    ToolParam,
)

__all__ = [
    "AUTO",
    "OUTPUTS",
    "RUNS_UNTIL_STOPPED",
    "calls",
    "function_call",
    "function_output",
    "images",
    "item",
    "logs",
    "message_text",
    "tools_for",
    "wait_until_started",
]

T = TypeVar("T")

AUTO: list[ToolParam] = [{"type": "code_interpreter", "container": {"type": "auto"}}]
OUTPUTS: list[ResponseIncludable] = ["code_interpreter_call.outputs"]
RUNS_UNTIL_STOPPED = "open('started', 'w').close()\nimport time\nwhile True:\n    time.sleep(0.1)"
"""Code that says it has begun (a `started` file in /mnt/data), then runs until something stops it."""


def wait_until_started(
    client: openai.OpenAI, container_id: str, meanwhile: Callable[[], object] = lambda: None, timeout: float = 30
) -> None:
    """Wait for RUNS_UNTIL_STOPPED to have begun in the container, calling `meanwhile` on each look."""
    deadline = time.monotonic() + timeout
    while not any(f.path.endswith("/started") for f in client.containers.files.list(container_id)):
        meanwhile()
        assert time.monotonic() < deadline, f"the code never started after {timeout} s"
        time.sleep(0.02)


def tools_for(container: str | dict[str, Any]) -> list[ToolParam]:
    """The code_interpreter tool with this container: an id, or an auto spec."""
    return [{"type": "code_interpreter", "container": container}]  # type: ignore[typeddict-item]  # a spec as sent


def calls(response: Response) -> list[ResponseCodeInterpreterToolCall]:
    return [item for item in response.output if isinstance(item, ResponseCodeInterpreterToolCall)]


def item(response: Response, index: int, kind: type[T]) -> T:
    """The output item at `index`, which must be of this kind."""
    found = response.output[index]
    assert isinstance(found, kind), f"output[{index}] is a {type(found).__name__}, not a {kind.__name__}"
    return found


def function_call(response: Response) -> ResponseFunctionToolCall:
    """The response's last item, a client function call."""
    return item(response, -1, ResponseFunctionToolCall)


def function_output(call_id: str, output: str) -> ResponseInputItemParam:
    """The client's answer to one of its function calls, as an input item."""
    return {"type": "function_call_output", "call_id": call_id, "output": output}


def message_text(message: ResponseOutputMessage) -> ResponseOutputText:
    (part,) = message.content
    assert isinstance(part, ResponseOutputText), part
    return part


def logs(call: ResponseCodeInterpreterToolCall) -> str:
    """Everything the call logged, in order ('' when outputs were not included)."""
    return "".join(output.logs for output in call.outputs or [] if output.type == "logs")


def images(call: ResponseCodeInterpreterToolCall) -> list[str]:
    """The call's image URLs, in order."""
    return [output.url for output in call.outputs or [] if output.type == "image"]
