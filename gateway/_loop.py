"""The tool loop, shared by every model: ask the model, run the code it writes, repeat until it answers.

It yields typed events as things happen (a call starts, its code grows, it starts interpreting, it
finishes; a message starts, grows, finishes) for each wire format to render, in full or streamed.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from sandbox import DisplayOutput, ErrorOutput, Execution, ExecutionStatus, ResultOutput, StreamOutput

from ._containers import ContainerService
from ._conversation import AssistantMessage, CallStatus, Citation, CodeCall, FunctionCall, Item, WrittenFile
from ._ids import new_hex_id
from ._model import CodeDelta, CodeReady, FunctionCallRequested, FunctionTool, Model, TextDelta, Turn, Usage

__all__ = [
    "CallCodeDelta",
    "CallCodeDone",
    "CallFinished",
    "CallInterpreting",
    "CallStarted",
    "FunctionCallMade",
    "LoopEvent",
    "LoopStopped",
    "MessageDelta",
    "MessageFinished",
    "MessageStarted",
    "ToolLoop",
    "UsageReported",
    "logs_of",
]

_SANDBOX_LINK = re.compile(r"\((sandbox:(/mnt/data/[^)\s]+))\)")
_STATUS = {
    ExecutionStatus.OK: CallStatus.COMPLETED,
    ExecutionStatus.ERROR: CallStatus.COMPLETED,
    ExecutionStatus.TIMEOUT: CallStatus.INCOMPLETE,
    ExecutionStatus.OUT_OF_MEMORY: CallStatus.FAILED,
    ExecutionStatus.KERNEL_DIED: CallStatus.FAILED,
}


@dataclass(frozen=True, slots=True)
class CallStarted:
    call_id: str
    container_id: str


@dataclass(frozen=True, slots=True)
class CallCodeDelta:
    call_id: str
    delta: str


@dataclass(frozen=True, slots=True)
class CallCodeDone:
    call_id: str
    code: str


@dataclass(frozen=True, slots=True)
class CallInterpreting:
    call_id: str


@dataclass(frozen=True, slots=True)
class CallFinished:
    call: CodeCall


@dataclass(frozen=True, slots=True)
class MessageStarted:
    message_id: str


@dataclass(frozen=True, slots=True)
class MessageDelta:
    message_id: str
    delta: str


@dataclass(frozen=True, slots=True)
class MessageFinished:
    message: AssistantMessage


@dataclass(frozen=True, slots=True)
class FunctionCallMade:
    """The model called a client function tool; the loop ends so the client can answer it."""

    call: FunctionCall


@dataclass(frozen=True, slots=True)
class UsageReported:
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True, slots=True)
class LoopStopped:
    """The loop hit its iteration limit before the model answered: the response is incomplete."""

    reason: str


LoopEvent = (
    CallStarted
    | CallCodeDelta
    | CallCodeDone
    | CallInterpreting
    | CallFinished
    | MessageStarted
    | MessageDelta
    | MessageFinished
    | FunctionCallMade
    | UsageReported
    | LoopStopped
)


class ToolLoop:
    def __init__(self, containers: ContainerService, execution_timeout: float | None, max_iterations: int) -> None:
        self._containers = containers
        self._timeout = execution_timeout
        self._max_iterations = max_iterations

    async def run(
        self,
        model: Model,
        instructions: str | None,
        items: Sequence[Item],
        container_id: str,
        max_iterations: int | None = None,
        functions: Sequence[FunctionTool] = (),
    ) -> AsyncIterator[LoopEvent]:
        """Run turns of `model` until one answers without code; the code runs in `container_id`.

        After `max_iterations` turns that all ran code (the gateway's limit, or the request's if lower)
        the loop stops with LoopStopped.
        """
        history = list(items)
        limit = min(self._max_iterations, max_iterations or self._max_iterations)
        memory_limit = self._containers.get(container_id, touch=False).memory_limit
        for _ in range(limit):
            ran_code = called_function = False
            turn = Turn(instructions, history, memory_limit, functions)
            async for event in self._turn(model, turn, container_id):
                if isinstance(event, CallFinished):
                    history.append(event.call)
                    ran_code = True
                elif isinstance(event, MessageFinished):
                    history.append(event.message)
                elif isinstance(event, FunctionCallMade):
                    called_function = True
                yield event
            if called_function or not ran_code:
                return
        yield LoopStopped(f"max_iterations: the model was still calling the python tool after {limit} turns")

    async def _turn(self, model: Model, turn: Turn, container_id: str) -> AsyncIterator[LoopEvent]:
        code: list[str] = []
        text: list[str] = []
        call_id = message_id = None
        async for event in model.respond(turn):
            if isinstance(event, CodeDelta):
                if call_id is None:
                    call_id = new_hex_id("ci_", 48)
                    yield CallStarted(call_id, container_id)
                code.append(event.delta)
                yield CallCodeDelta(call_id, event.delta)
            elif isinstance(event, CodeReady) and call_id is not None:
                yield CallCodeDone(call_id, "".join(code))
                yield CallInterpreting(call_id)
                yield CallFinished(await self._execute(call_id, "".join(code), container_id))
                call_id, code = None, []
            elif isinstance(event, Usage):
                yield UsageReported(event.input_tokens, event.output_tokens)
            elif isinstance(event, FunctionCallRequested):
                call = FunctionCall(
                    id=new_hex_id("fc_", 48), call_id=event.call_id, name=event.name, arguments=event.arguments
                )
                yield FunctionCallMade(call)
            elif isinstance(event, TextDelta):
                if message_id is None:
                    message_id = new_hex_id("msg_", 48)
                    yield MessageStarted(message_id)
                text.append(event.delta)
                yield MessageDelta(message_id, event.delta)
        if message_id is not None:
            yield MessageFinished(await self._message(message_id, "".join(text), container_id))

    async def _execute(self, call_id: str, code: str, container_id: str) -> CodeCall:
        sandbox = self._containers.sandbox(container_id)
        execution = await sandbox.execute(code, timeout=self._timeout)
        paths = {f.path for f in execution.files}
        records = await self._containers.sync_files(container_id)
        written = tuple(WrittenFile(file_id=r.id, path=r.path) for r in records if r.path in paths)
        return CodeCall(
            id=call_id,
            code=code,
            container_id=container_id,
            status=_STATUS[execution.status],
            logs=logs_of(execution),
            images=execution.images,
            files=tuple(sorted(written, key=lambda f: f.path)),
        )

    async def _message(self, message_id: str, text: str, container_id: str) -> AssistantMessage:
        """The answer, with a citation over each `sandbox:/mnt/data/...` link to a file in the container."""
        if "sandbox:" not in text:
            return AssistantMessage(id=message_id, text=text)
        files = {r.path: r.id for r in await self._containers.sync_files(container_id)}
        citations = []
        for link in _SANDBOX_LINK.finditer(text):
            file_id = files.get(link[2])
            if file_id is not None:
                filename = link[2].rsplit("/", 1)[-1]
                citations.append(
                    Citation(
                        container_id=container_id,
                        file_id=file_id,
                        filename=filename,
                        start_index=link.start(1),
                        end_index=link.end(1),
                    )
                )
        return AssistantMessage(id=message_id, text=text, citations=tuple(citations))


def logs_of(execution: Execution) -> str:
    """What the hosted tool's `logs` output holds: stdout, stderr, the last value and tracebacks, in order."""
    parts: list[str] = []
    for output in execution.outputs:
        if isinstance(output, StreamOutput):
            parts.append(output.text)
        elif isinstance(output, ResultOutput) and output.text is not None:
            parts.append(output.text + "\n")
        elif isinstance(output, DisplayOutput) and output.png is None:
            plain = output.data.get("text/plain")
            if isinstance(plain, str):
                parts.append(plain + "\n")
        elif isinstance(output, ErrorOutput):
            parts.append(output.text + "\n")
    if execution.message:
        parts.append(execution.message + "\n")
    return "".join(parts)
