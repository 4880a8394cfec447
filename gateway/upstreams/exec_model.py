"""`kernelgate/exec`: a deterministic built-in model that runs the user's own code.

It takes the last user message, runs each fenced code block in it (```python or a bare fence) in
order, or the whole message when it has no fence, each as one code interpreter call; then it answers
with the last call's output and a link to every file the calls wrote. The same input gives the same
text, and it streams like a real model: code and text each in several deltas.

When it may not run code (no code interpreter, `tool_choice` none or another tool, a limit reached) it
answers without: with what the calls so far printed, or else by repeating the user's message. With
structured output (`text.format`) the answer is only the last call's printed output, or the message:
code that prints JSON, or a message that is JSON, gives a parsed answer.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Literal

from ..conversation.items import CodeCall, Item, UserMessage
from ..conversation.model import CodeDelta, CodeReady, ModelEvent, TextDelta, Turn
from .python_tool import PYTHON

__all__ = ["ExecModel", "code_blocks"]

_FENCE = re.compile(
    r"^```[ \t]*(python3?|py|bash|sh|shell)?[ \t]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE | re.IGNORECASE
)
_SHELLS = {"bash", "sh", "shell"}
Block = tuple[Literal["python", "bash", "text_editor"], str]


def code_blocks(text: str, shell: bool = False) -> list[Block]:
    """The fenced Python (or bare) code blocks of a message, with (`shell`) its bash blocks, in order; or
    the whole message as Python when it has none."""
    blocks: list[Block] = []
    for language, code in _FENCE.findall(text):
        if language.lower() in _SHELLS:
            if shell:
                blocks.append(("bash", code.rstrip("\n")))
        else:
            blocks.append(("python", code.rstrip("\n")))
    if blocks:
        return blocks
    return [("python", text)] if text.strip() else []


class ExecModel:
    name = "kernelgate/exec"

    async def respond(self, turn: Turn) -> AsyncIterator[ModelEvent]:
        request, calls = _since_last_user_message(turn.items)
        blocks = code_blocks(request, turn.shell)
        if len(calls) < len(blocks) and _may_run(turn):
            tool, code = blocks[len(calls)]
            for delta in _pieces(code):
                yield CodeDelta(delta, tool)
            yield CodeReady()
            return
        if turn.output_format is not None:
            answer = calls[-1].logs.strip() if calls else request
        elif calls or _may_run(turn):
            answer = _answer(calls)
        else:
            answer = request
        for delta in _pieces(answer):
            yield TextDelta(delta)


def _may_run(turn: Turn) -> bool:
    choice = turn.tool_choice
    return turn.code and choice.mode != "none" and (not choice.names or PYTHON in choice.names)


def _since_last_user_message(items: Sequence[Item]) -> tuple[str, list[CodeCall]]:
    calls: list[CodeCall] = []
    for item in reversed(items):
        if isinstance(item, UserMessage):
            return item.text, list(reversed(calls))
        if isinstance(item, CodeCall):
            calls.append(item)
    return "", []


def _answer(calls: list[CodeCall]) -> str:
    if not calls:
        return "There is no code to run in the message."
    last = calls[-1]
    logs = last.logs.rstrip("\n")
    text = f"Output:\n\n```\n{logs}\n```" if logs else "The code ran and printed nothing."
    if last.images:
        text += f"\n\nIt displayed {len(last.images)} image{'s' if len(last.images) > 1 else ''}."
    written: dict[str, str] = {}
    for call in calls:
        for file in call.files:
            written[file.path] = file.filename
    if written:
        links = "\n".join(f"- [{name}](sandbox:{path})" for path, name in written.items())
        text += f"\n\nFiles written:\n{links}"
    return text


def _pieces(text: str) -> Iterator[str]:
    """A text as several deltas: by line, with long lines split in two, as a model streams tokens."""
    for line in text.splitlines(keepends=True) or [text]:
        if len(line) > 16:
            yield line[: len(line) // 2]
            yield line[len(line) // 2 :]
        else:
            yield line
