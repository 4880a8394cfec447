"""The tool loop, shared by every model: ask the model, run the code it writes, repeat until it answers.

It yields typed events as things happen (a call starts, its code grows, it starts interpreting, it
finishes; a message starts, grows, finishes) for each wire format to render, in full or streamed.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from sandbox import DisplayOutput, ErrorOutput, Execution, ExecutionStatus, ResultOutput, StreamOutput

from .._ids import new_hex_id
from .._metrics import Metrics
from ..workspace.containers import ContainerService
from .editor import run_edit
from .items import AssistantMessage, CallStatus, Citation, CodeCall, FunctionCall, Item, SystemMessage, WrittenFile
from .model import (
    CodeDelta,
    CodeReady,
    FunctionCallRequested,
    FunctionTool,
    Model,
    OutputFormat,
    Sampling,
    Stopped,
    TextDelta,
    ToolChoice,
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
    "Run",
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
# An execution's status as kernelgate_executions_total counts it.
_METRIC_STATUS = {
    ExecutionStatus.OK: "completed",
    ExecutionStatus.ERROR: "error",
    ExecutionStatus.TIMEOUT: "timeout",
    ExecutionStatus.OUT_OF_MEMORY: "oom",
    ExecutionStatus.KERNEL_DIED: "kernel_died",
}


@dataclass(frozen=True, slots=True)
class CallStarted:
    call_id: str
    container_id: str
    tool: Literal["python", "bash", "text_editor"] = "python"


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
    """The response ends incomplete: a turn was cut short, or the response's output token budget is spent."""

    reason: Literal["max_output_tokens", "content_filter"]


@dataclass(frozen=True)
class Run:
    """What one response asks of the loop."""

    instructions: str | None
    items: Sequence[Item]
    container_id: str | None
    """Where the code runs; None: the model has no python tool."""
    functions: Sequence[FunctionTool] = ()
    max_output_tokens: int | None = None
    """For the whole response, every turn's output together."""
    max_tool_calls: int | None = None
    """Python calls to run at most; then the model is asked to answer without tools."""
    sampling: Sampling = field(default_factory=Sampling)
    tool_choice: ToolChoice = field(default_factory=ToolChoice)
    """For the first turn; the turns after it are `auto` (`none` stays `none`)."""
    output_format: OutputFormat | None = None
    shell: bool = False
    """Offer a bash tool beside python (a door whose hosted tool runs commands)."""


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
    def __init__(
        self,
        containers: ContainerService,
        execution_timeout: float | None,
        max_iterations: int,
        metrics: Metrics | None = None,
    ) -> None:
        self._containers = containers
        self._timeout = execution_timeout
        self._max_iterations = max_iterations
        self._metrics = metrics or Metrics()

    async def run(self, model: Model, run: Run) -> AsyncIterator[LoopEvent]:
        """Run turns of `model` until one answers without code; the code runs in `run.container_id`.

        After the gateway's `max_iterations` turns that all ran code, or `run.max_tool_calls` calls, the
        model has one more turn with tool_choice `none`: code it still writes does not run, and what it
        says completes the response, as OpenAI's hosted tool ignores calls past its limit.
        """
        history = list(run.items)
        memory_limit = self._containers.get(run.container_id, touch=False).memory_limit if run.container_id else None
        choice, calls, spent = run.tool_choice, 0, 0
        for number in range(self._max_iterations + 1):
            last = number == self._max_iterations or (run.max_tool_calls is not None and calls >= run.max_tool_calls)
            budget = None if run.max_output_tokens is None else run.max_output_tokens - spent
            if budget is not None and budget <= 0:
                yield LoopStopped("max_output_tokens")
                return
            instructions, visible = _with_system_messages(run.instructions, history)
            turn = Turn(
                instructions,
                visible,
                memory_limit,
                run.functions,
                budget,
                run.sampling,
                ToolChoice("none") if last else choice,
                run.output_format,
                run.shell,
            )
            ran_code = ended = False
            async for event in self._turn(model, turn, run.container_id, may_run=not last):
                if isinstance(event, CallFinished):
                    history.append(event.call)
                    ran_code = True
                    calls += 1
                elif isinstance(event, MessageFinished):
                    history.append(event.message)
                elif isinstance(event, UsageReported):
                    spent += event.output_tokens
                elif isinstance(event, FunctionCallMade | LoopStopped):
                    ended = True
                yield event
            if ended or not ran_code:
                return
            choice = _after_first_turn(run.tool_choice)

    async def _turn(
        self, model: Model, turn: Turn, container_id: str | None, may_run: bool
    ) -> AsyncIterator[LoopEvent]:
        """One model turn: text becomes a message, each call runs when its code is ready.

        A message ends where a call starts, so the items come out in the order the model wrote them.
        Without `may_run` (or a container) the python calls the model writes are dropped.
        """
        state = _TurnState(container_id or "")
        async for event in model.respond(turn):
            if isinstance(event, Usage):
                yield UsageReported(event.input_tokens, event.output_tokens)
            elif state.stopped is not None:
                continue  # after a cut only the usage still counts
            elif isinstance(event, Stopped):
                state.stopped = event.reason
            elif isinstance(event, CodeDelta | CodeReady) and not (may_run and container_id):
                continue
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
                state.tool = event.tool
                yield CallStarted(state.call_id, state.container_id, event.tool)
            state.code.append(event.delta)
            yield CallCodeDelta(state.call_id, event.delta)
        elif isinstance(event, CodeReady) and state.call_id is not None:
            tool = state.tool
            call_id, code = state.take_call()
            yield CallCodeDone(call_id, code)
            yield CallInterpreting(call_id)
            call = await self._execute(call_id, code, state.container_id, tool)
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

    async def _execute(
        self, call_id: str, code: str, container_id: str, tool: Literal["python", "bash", "text_editor"] = "python"
    ) -> CodeCall:
        if tool == "text_editor":
            return await self._edit(call_id, code, container_id)
        sandbox = self._containers.sandbox(container_id)
        execution = await sandbox.execute(code if tool == "python" else _bash(code), timeout=self._timeout)
        written = await self._written(container_id, [f.path for f in execution.files])
        stdout, stderr, return_code = _streams(execution, tool)
        self._count(tool, execution, return_code)
        return CodeCall(
            id=call_id,
            code=code,
            tool=tool,
            stdout=stdout,
            stderr=stderr,
            return_code=return_code,
            container_id=container_id,
            status=_STATUS[execution.status],
            raised=execution.status is ExecutionStatus.ERROR or return_code != 0,
            logs=logs_of(execution) if tool == "python" else stdout + stderr + _exit_note(return_code),
            images=execution.images,
            files=written,
        )

    async def _written(self, container_id: str, paths: list[str]) -> tuple[WrittenFile, ...]:
        """The files a call wrote, by path, each with its container file record. Most calls write nothing:
        then the records wait for the next listing to catch up (two thread hops, a scan of /mnt/data and
        the store's query saved on every such call: ~0.5 ms)."""
        if not paths:
            return ()
        records = await self._containers.sync_files(container_id, paths)
        return tuple(sorted((WrittenFile(file_id=r.id, path=r.path) for r in records.values()), key=lambda f: f.path))

    def _count(self, tool: str, execution: Execution, return_code: int) -> None:
        status = _METRIC_STATUS[execution.status]
        if status == "completed" and return_code != 0:
            status = "error"  # a bash command that failed
        self._metrics.executions.labels(tool, status).inc()
        self._metrics.execution_seconds.labels(tool, status).observe(execution.duration)
        if execution.dropped_text_chars:
            self._metrics.output_dropped.labels("text").inc(execution.dropped_text_chars)
        if execution.dropped_display_bytes:
            self._metrics.output_dropped.labels("display").inc(execution.dropped_display_bytes)

    async def _edit(self, call_id: str, arguments: str, container_id: str) -> CodeCall:
        edit = await run_edit(self._containers.sandbox(container_id), arguments)
        written = await self._written(container_id, [edit.file] if edit.changed else [])
        failed = edit.error_code is not None
        return CodeCall(
            id=call_id,
            code=arguments,
            tool="text_editor",
            container_id=container_id,
            status=CallStatus.COMPLETED,
            logs=edit.text + "\n",
            stdout="" if failed else edit.text,
            stderr=edit.text if failed else "",
            return_code=1 if failed else 0,
            raised=failed,
            files=written,
            edit={"command": edit.command, "error_code": edit.error_code, **edit.details},
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
        self.tool: Literal["python", "bash", "text_editor"] = "python"
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


_BASH_RUNNER = """\
def _kernelgate_bash(command):
    import os, signal, subprocess, sys
    process = subprocess.Popen(
        ["bash", "-c", command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace",
        cwd="/mnt/data", start_new_session=True,
    )
    try:
        out, err = process.communicate()
    except BaseException:  # the interrupt at the timeout: the command and everything it started go
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    sys.stdout.write(out)
    sys.stderr.write(err)
    return process.returncode
_kernelgate_bash({command!r})"""


def _bash(command: str) -> str:
    """Python for the kernel that runs a shell command in the sandbox: the same /mnt/data, limits, timeout
    and interrupt (SIGINT at the timeout kills the command) as Python code; the exit code is the result."""
    return _BASH_RUNNER.format(command=command)


def _streams(execution: Execution, tool: str) -> tuple[str, str, int]:
    """stdout, stderr (with a traceback) and the return code, for the APIs that report them apart."""
    stdout = "".join(o.text for o in execution.outputs if isinstance(o, StreamOutput) and o.name == "stdout")
    stderr = "".join(o.text for o in execution.outputs if isinstance(o, StreamOutput) and o.name == "stderr")
    stderr += "".join(o.text + "\n" for o in execution.outputs if isinstance(o, ErrorOutput))
    if execution.message:
        stderr += execution.message + "\n"
    if tool == "bash":
        results = [o.text for o in execution.outputs if isinstance(o, ResultOutput) and o.text is not None]
        code = results[-1] if results else ""
        return stdout, stderr, int(code) if code.lstrip("-").isdigit() else 1
    if tool == "python":
        for output in execution.outputs:
            if isinstance(output, ResultOutput) and output.text is not None:
                stdout += output.text + "\n"
    return stdout, stderr, 0 if execution.status is ExecutionStatus.OK else 1


def _exit_note(return_code: int) -> str:
    return f"[exit code {return_code}]\n" if return_code else ""


def _with_system_messages(instructions: str | None, items: list[Item]) -> tuple[str | None, list[Item]]:
    """The system and developer messages of the conversation join the instructions (every upstream API has
    a place for those); the other items are what the model sees as the conversation."""
    system = [item.text for item in items if isinstance(item, SystemMessage)]
    if not system:
        return instructions, items
    joined = "\n\n".join(text for text in (instructions, *system) if text)
    return joined or None, [item for item in items if not isinstance(item, SystemMessage)]


def _after_first_turn(choice: ToolChoice) -> ToolChoice:
    """A forced or required tool is asked for once: after that call the model may answer."""
    if choice.mode != "required":
        return choice
    return ToolChoice("auto", choice.names if len(choice.names) > 1 else ())


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
