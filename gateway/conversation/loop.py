"""The tool loop, shared by every model: ask the model, run the code it writes, repeat until it answers.

It yields typed events as things happen (a call starts, its code grows, it starts interpreting, it
finishes; a message starts, grows, finishes) for each wire format to render, in full or streamed.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Literal

from sandbox import DisplayOutput, ErrorOutput, Execution, ExecutionStatus, ResultOutput, StreamOutput

from .._ids import new_hex_id
from ..workspace.containers import ContainerService
from .items import AssistantMessage, CallStatus, Citation, CodeCall, FunctionCall, Item, WrittenFile
from .model import (
    CodeDelta,
    CodeReady,
    FunctionCallRequested,
    FunctionTool,
    Model,
    Sampling,
    Stopped,
    TextDelta,
    Turn,
    Usage,
)

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
    """The response ends incomplete: the iteration limit, or the model's turn was cut short."""

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
        max_output_tokens: int | None = None,
        sampling: Sampling | None = None,
    ) -> AsyncIterator[LoopEvent]:
        """Run turns of `model` until one answers without code; the code runs in `container_id`.

        After `max_iterations` turns that all ran code (the gateway's limit, or the request's if lower)
        the loop stops with LoopStopped.
        """
        history = list(items)
        limit = min(self._max_iterations, max_iterations or self._max_iterations)
        memory_limit = self._containers.get(container_id, touch=False).memory_limit
        for _ in range(limit):
            ran_code = ended = False
            turn = Turn(instructions, history, memory_limit, functions, max_output_tokens, sampling or Sampling())
            async for event in self._turn(model, turn, container_id):
                if isinstance(event, CallFinished):
                    history.append(event.call)
                    ran_code = True
                elif isinstance(event, MessageFinished):
                    history.append(event.message)
                elif isinstance(event, FunctionCallMade | LoopStopped):
                    ended = True
                yield event
            if ended or not ran_code:
                return
        yield LoopStopped(f"max_iterations: the model was still calling the python tool after {limit} turns")

    async def _turn(self, model: Model, turn: Turn, container_id: str) -> AsyncIterator[LoopEvent]:
        """One model turn: text becomes a message, each call runs when its code is ready.

        A message ends where a call starts, so the items come out in the order the model wrote them.
        """
        state = _TurnState(container_id)
        async for event in model.respond(turn):
            if isinstance(event, Usage):
                yield UsageReported(event.input_tokens, event.output_tokens)
            elif state.stopped is not None:
                continue  # after a cut only the usage still counts
            elif isinstance(event, Stopped):
                state.stopped = event.reason
            elif isinstance(event, TextDelta):
                for loop_event in state.text(event.delta):
                    yield loop_event
            else:
                async for loop_event in self._on_call_event(state, event):
                    yield loop_event
        async for loop_event in self._end_turn(state):
            yield loop_event

    async def _on_call_event(
        self, state: _TurnState, event: CodeDelta | CodeReady | FunctionCallRequested
    ) -> AsyncIterator[LoopEvent]:
        if state.message_id is not None:
            yield await self._finish_message(state)
        if isinstance(event, CodeDelta):
            if state.call_id is None:
                state.call_id = new_hex_id("ci_", 48)
                yield CallStarted(state.call_id, state.container_id)
            state.code.append(event.delta)
            yield CallCodeDelta(state.call_id, event.delta)
        elif isinstance(event, CodeReady) and state.call_id is not None:
            call_id, code = state.take_call()
            yield CallCodeDone(call_id, code)
            yield CallInterpreting(call_id)
            call = await self._execute(call_id, code, state.container_id)
            yield CallFinished(call.model_copy(update={"signature": event.signature}))
        elif isinstance(event, FunctionCallRequested):
            function_call = FunctionCall(
                id=new_hex_id("fc_", 48),
                call_id=event.call_id,
                name=event.name,
                arguments=event.arguments,
                signature=event.signature,
            )
            yield FunctionCallMade(function_call)

    async def _end_turn(self, state: _TurnState) -> AsyncIterator[LoopEvent]:
        if state.message_id is not None:
            yield await self._finish_message(state)
        if state.stopped is None:
            return
        if state.call_id is not None:
            # The cut came inside the call: its code may be half written, so it does not run.
            call_id, code = state.take_call()
            yield CallCodeDone(call_id, code)
            logs = f"Not run: the model's turn was cut short ({state.stopped}) before this code was complete.\n"
            status = CallStatus.INCOMPLETE
            yield CallFinished(
                CodeCall(id=call_id, code=code, container_id=state.container_id, status=status, logs=logs)
            )
        yield LoopStopped(state.stopped)

    async def _finish_message(self, state: _TurnState) -> MessageFinished:
        message_id, text = state.take_message()
        return MessageFinished(await self._message(message_id, text, state.container_id))

    async def _execute(self, call_id: str, code: str, container_id: str) -> CodeCall:
        sandbox = self._containers.sandbox(container_id)
        execution = await sandbox.execute(code, timeout=self._timeout)
        records = await self._containers.sync_files(container_id, [f.path for f in execution.files])
        written = tuple(WrittenFile(file_id=r.id, path=r.path) for r in records.values())
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
        links = list(_SANDBOX_LINK.finditer(text))
        files = await self._containers.sync_files(container_id, {link[2] for link in links})
        citations = []
        for link in links:
            record = files.get(link[2])
            if record is not None:
                file_id = record.id
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


class _TurnState:
    """What one turn has open: the message being written, the call whose code is arriving, a cut."""

    def __init__(self, container_id: str) -> None:
        self.container_id = container_id
        self.message_id: str | None = None
        self.message: list[str] = []
        self.call_id: str | None = None
        self.code: list[str] = []
        self.stopped: Literal["max_output_tokens", "content_filter"] | None = None

    def text(self, delta: str) -> list[LoopEvent]:
        events: list[LoopEvent] = []
        if self.message_id is None:
            self.message_id = new_hex_id("msg_", 48)
            events.append(MessageStarted(self.message_id))
        self.message.append(delta)
        events.append(MessageDelta(self.message_id, delta))
        return events

    def take_message(self) -> tuple[str, str]:
        assert self.message_id is not None
        taken = (self.message_id, "".join(self.message))
        self.message_id, self.message = None, []
        return taken

    def take_call(self) -> tuple[str, str]:
        assert self.call_id is not None
        taken = (self.call_id, "".join(self.code))
        self.call_id, self.code = None, []
        return taken


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
