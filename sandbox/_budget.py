"""What an execution keeps of its outputs: bounded, whatever the code prints, displays or forges.

Text (stdout and stderr) keeps its head and its tail: the first half of the allowance passes live,
later text waits in a buffer that keeps only the last half, and a marker says how much was dropped
between them. Rich outputs (results, displays, tracebacks) count against a number and a byte
allowance; past either they are dropped, and a note at the end says how many. So an execution's
memory, and everything built from it downstream, stays within the limits however much the code sends.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

from ._models import DisplayOutput, ErrorOutput, Output, ResultOutput, StreamOutput

__all__ = ["OutputBudget", "OutputLimits"]


@dataclass(frozen=True, slots=True)
class OutputLimits:
    text_chars: int
    """Characters of stdout and stderr kept: the first half and the last half."""
    rich_outputs: int
    """Results, displays and tracebacks kept."""
    rich_bytes: int
    """Their summed size (binary data decoded, text in characters)."""


class OutputBudget:
    """Admits one execution's outputs in order; `closing()` gives what was held back, and the notes."""

    def __init__(self, limits: OutputLimits) -> None:
        self._limits = limits
        self._head_left = limits.text_chars // 2
        self._tail_limit = limits.text_chars - limits.text_chars // 2
        self._tail: deque[Output] = deque()
        self._tail_chars = 0
        self._cut_stream: str | None = None
        self._rich_left = limits.rich_outputs
        self._rich_bytes_left = limits.rich_bytes
        self.dropped_chars = 0
        self.dropped_rich = 0
        self.dropped_rich_bytes = 0
        self.ignored_messages = 0
        self._extra_notes: list[str] = []
        self.last_error: ErrorOutput | None = None
        """The last traceback, kept for the execution's status even when the output itself was dropped."""

    def admit(self, output: Output) -> list[Output]:
        """What of `output` passes now (possibly nothing: dropped, or held for the tail)."""
        if isinstance(output, StreamOutput):
            return self._text(output)
        if isinstance(output, ErrorOutput):
            self.last_error = output
        if not self._take_rich(output):
            return []
        if self._cut_stream is not None:  # after the cut, keep the order: it joins the tail
            self._tail.append(output)
            return []
        return [output]

    def ignore(self) -> None:
        """Count a kernel message that was not valid output (malformed, or not what a kernel sends)."""
        self.ignored_messages += 1

    def note(self, text: str) -> None:
        """Something else the closing note should say."""
        self._extra_notes.append(text)

    def closing(self) -> list[Output]:
        """The marker where text was dropped, the tail, and a note on anything else left out."""
        closing: list[Output] = []
        if self.dropped_chars:
            half = self._tail_limit
            text = (
                f"\n[... {self.dropped_chars:,} characters of output dropped here: an execution keeps "
                f"the first {self._limits.text_chars // 2:,} and the last {half:,} ...]\n"
            )
            closing.append(StreamOutput(name=self._stream_name(), text=text))
        closing.extend(self._tail)
        self._tail.clear()
        notes = self._notes()
        if notes:
            closing.append(StreamOutput(name="stderr", text="".join(f"[kernelgate: {note}]\n" for note in notes)))
        return closing

    def _notes(self) -> list[str]:
        notes = []
        if self.dropped_rich:
            notes.append(
                f"{self.dropped_rich:,} displayed outputs ({self.dropped_rich_bytes:,} bytes) were dropped: an "
                f"execution keeps at most {self._limits.rich_outputs:,} of them and "
                f"{self._limits.rich_bytes:,} bytes"
            )
        if self.ignored_messages:
            notes.append(f"{self.ignored_messages:,} messages from the kernel were not valid output and were ignored")
        return notes + self._extra_notes

    def _stream_name(self) -> Literal["stdout", "stderr"]:
        return "stderr" if self._cut_stream == "stderr" else "stdout"

    def _text(self, output: StreamOutput) -> list[Output]:
        text = output.text
        if self._cut_stream is None:
            if len(text) <= self._head_left:
                self._head_left -= len(text)
                return [output]
            self._cut_stream = output.name
            passed: list[Output] = []
            if self._head_left:
                passed.append(StreamOutput(name=output.name, text=text[: self._head_left]))
                text = text[self._head_left :]
                self._head_left = 0
            self._hold(StreamOutput(name=output.name, text=text))
            return passed
        self._hold(output)
        return []

    def _hold(self, output: StreamOutput) -> None:
        """Add text to the tail, dropping its oldest text past the tail's allowance."""
        self._tail.append(output)
        self._tail_chars += len(output.text)
        while self._tail_chars > self._tail_limit:
            index = next(i for i, held in enumerate(self._tail) if isinstance(held, StreamOutput))
            oldest = self._tail[index]
            assert isinstance(oldest, StreamOutput)
            excess = self._tail_chars - self._tail_limit
            if len(oldest.text) <= excess:
                del self._tail[index]
                cut = len(oldest.text)
            else:
                self._tail[index] = StreamOutput(name=oldest.name, text=oldest.text[excess:])
                cut = excess
            self._tail_chars -= cut
            self.dropped_chars += cut

    def _take_rich(self, output: ResultOutput | DisplayOutput | ErrorOutput) -> bool:
        size = len(output.text) if isinstance(output, ErrorOutput) else sum(len(v) for v in output.data.values())
        if self._rich_left <= 0 or size > self._rich_bytes_left:
            self.dropped_rich += 1
            self.dropped_rich_bytes += size
            return False
        self._rich_left -= 1
        self._rich_bytes_left -= size
        return True
