"""What every upstream API shares: the python tool as the model sees it, and a call's result as it reads it.

The hosted `code_interpreter` tool becomes a plain function tool, `python`, described as the hosted one
is. Each upstream module (`openai/chat`, `openai/responses`, `anthropic`, `gemini`) offers it in its own
API's shape, streams the calls back to the tool loop as plain code, and sends each result back as its
API's tool result.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Literal

from ..conversation.items import CodeCall, FunctionCall, Item
from ..conversation.model import (
    CodeDelta,
    CodeReady,
    FunctionCallRequested,
    FunctionTool,
    ModelError,
    ModelEvent,
    ToolChoice,
    Turn,
)
from .arguments import CodeArgumentDecoder, code_of

__all__ = [
    "BASH",
    "IMAGES_NOTE",
    "NO_IMAGES_NOTE",
    "PYTHON",
    "SANDBOX_TOOLS",
    "TEXT_EDITOR",
    "ToolCall",
    "arguments_object",
    "forced_name",
    "function_names",
    "offered",
    "python_function",
    "result_for_model",
    "sandbox_call",
]

PYTHON = "python"
BASH = "bash"
TEXT_EDITOR = "text_editor"
SANDBOX_TOOLS: dict[str, tuple[str, Literal["python", "bash", "text_editor"]]] = {
    PYTHON: ("code", "python"),
    BASH: ("command", "bash"),
    TEXT_EDITOR: ("", "text_editor"),  # its whole JSON input is the call's code
}
"""The tools that run in the sandbox, by the name the model calls: (the argument with the code, the tool)."""
IMAGES_NOTE = "The images the python call above displayed:"
NO_IMAGES_NOTE = "[The user attached {count} image(s); this model does not take images.]"
_LOG_LIMIT = 20_000


def python_function(memory_limit: str) -> FunctionTool:
    description = (
        "Run Python code in a stateful Jupyter kernel (the python tool). Variables, imports and files persist "
        "between calls. The working directory is /mnt/data, where the user's files are and where files "
        "you write can be linked as [name](sandbox:/mnt/data/name). There is no internet access. Memory is "
        f"limited to {memory_limit}. The result is what the code printed, the value of its last expression "
        "and any traceback. Common data libraries (numpy, pandas, matplotlib, scipy, scikit-learn) are installed."
    )
    parameters = {
        "type": "object",
        "properties": {"code": {"type": "string", "description": "The Python code to run."}},
        "required": ["code"],
    }
    return FunctionTool(PYTHON, description, parameters)


def bash_function(memory_limit: str) -> FunctionTool:
    description = (
        "Run a shell command with bash in the same sandbox as the python tool (working directory /mnt/data, "
        f"no internet access, memory limited to {memory_limit}). The result is its stdout, its stderr and "
        "its exit code."
    )
    parameters = {
        "type": "object",
        "properties": {"command": {"type": "string", "description": "The command to run."}},
        "required": ["command"],
    }
    return FunctionTool(BASH, description, parameters)


def text_editor_function() -> FunctionTool:
    description = (
        "View, create and edit text files in /mnt/data, the sandbox the python and bash tools use. Commands: "
        "view (a file, with an optional view_range [first, last] of lines, -1 for the end; or the directory), "
        "create (path and file_text; replaces a file that exists), str_replace (path, old_str found exactly "
        "once, new_str)."
    )
    parameters = {
        "type": "object",
        "properties": {
            "command": {"type": "string", "enum": ["view", "create", "str_replace"]},
            "path": {"type": "string", "description": "A path in /mnt/data."},
            "file_text": {"type": "string"},
            "old_str": {"type": "string"},
            "new_str": {"type": "string"},
            "view_range": {"type": "array", "items": {"type": "integer"}},
        },
        "required": ["command", "path"],
    }
    return FunctionTool(TEXT_EDITOR, description, parameters)


def offered(turn: Turn) -> list[FunctionTool]:
    """The tools the model has this turn: python (when the response has a code tool), bash (when the door's
    tool runs commands), then the client's functions."""
    sandbox = [python_function(turn.memory_limit)] if turn.memory_limit else []
    if turn.memory_limit and turn.shell:
        sandbox += [bash_function(turn.memory_limit), text_editor_function()]
    return [*sandbox, *turn.functions]


def sandbox_call(call: CodeCall) -> tuple[str, dict[str, Any]]:
    """A code call as the model made it: the tool's name and its arguments."""
    if call.tool == "text_editor":
        return TEXT_EDITOR, arguments_object(call.code)
    return (BASH, {"command": call.code}) if call.tool == "bash" else (PYTHON, {"code": call.code})


def forced_name(choice: ToolChoice) -> str | None:
    """The one tool a `required` choice names, if it names exactly one."""
    return choice.names[0] if choice.mode == "required" and len(choice.names) == 1 else None


def result_for_model(call: CodeCall, images_attached: bool = False) -> str:
    """The call's result as the model reads it: logs bounded in size, images and files named."""
    logs = call.logs
    if len(logs) > _LOG_LIMIT:
        cut = len(logs) - _LOG_LIMIT
        logs = f"{logs[: _LOG_LIMIT // 2]}\n[... {cut} characters cut ...]\n{logs[-_LOG_LIMIT // 2 :]}"
    parts = [logs or "(no output)"]
    if call.images and not images_attached:
        parts.append(f"[The code displayed {len(call.images)} image(s), shown to the user.]")
    if call.files:
        parts.append("Files written: " + ", ".join(f.path for f in call.files))
    return "\n".join(parts)


def arguments_object(arguments: str) -> dict[str, Any]:
    """A client function call's JSON arguments as the object Anthropic's and Gemini's calls carry."""
    try:
        parsed = json.loads(arguments or "{}")
    except json.JSONDecodeError:
        return {"arguments": arguments}
    return parsed if isinstance(parsed, dict) else {"arguments": parsed}


def function_names(items: Iterable[Item]) -> dict[str, str]:
    """Each client function call's name by its call id: some APIs name the function in its result."""
    return {item.call_id: item.name for item in items if isinstance(item, FunctionCall)}


class ToolCall:
    """One tool call as its JSON arguments arrive in fragments; python's code is decoded as it comes."""

    def __init__(self, call_id: str, name: str = "", signature: bytes | None = None) -> None:
        self.call_id = call_id
        self.name = name
        self.signature = signature
        self._raw: list[str] = []
        self._decoder: CodeArgumentDecoder | None = None
        self._streamed = False

    def feed(self, fragment: str) -> str:
        """Take a fragment of the arguments; return the code it adds (python only)."""
        if not fragment:
            return ""
        self._raw.append(fragment)
        if self.name not in SANDBOX_TOOLS or not SANDBOX_TOOLS[self.name][0]:
            return ""  # not a sandbox tool, or one whose input goes whole (the text editor's)
        if self._decoder is None:
            self._decoder = CodeArgumentDecoder(SANDBOX_TOOLS[self.name][0])
        code = self._decoder.feed(fragment)
        self._streamed = self._streamed or bool(code)
        return code

    def add_whole(self, arguments: str) -> None:
        """The complete arguments at once (a non-streamed answer)."""
        self._raw.append(arguments)

    def finish(self, functions: Iterable[str]) -> list[ModelEvent]:
        """The call for the tool loop: python's code is ready, or a client function is called."""
        arguments = "".join(self._raw)
        if self.name not in SANDBOX_TOOLS and self.name in set(functions):
            return [FunctionCallRequested(self.call_id, self.name, arguments or "{}", self.signature)]
        if self.name not in SANDBOX_TOOLS:
            msg = f"The upstream model called a tool kernelgate does not know: {self.name!r}."
            raise ModelError(msg, 502)
        if self._streamed:
            return [CodeReady(self.signature)]
        key, tool = SANDBOX_TOOLS[self.name]
        return [CodeDelta(code_of(arguments, key), tool), CodeReady(self.signature)]  # not JSON, or sent whole

    @property
    def tool(self) -> Literal["python", "bash", "text_editor"]:
        return SANDBOX_TOOLS[self.name][1] if self.name in SANDBOX_TOOLS else "python"
