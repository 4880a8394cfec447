"""The text editor tool: view, create and edit files in a sandbox's /mnt/data, from the gateway.

Anthropic's code execution tool (20250825 and later) gives the model a text editor beside bash; here it
works on the sandbox's files directly (the same files the code sees), so it needs no kernel and cannot
leave /mnt/data. Every answer is an `Edit`: what a model reads back, and the fields Anthropic's result
blocks carry.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from sandbox import FileNotFoundInSandbox, InvalidFilePath, Sandbox

__all__ = ["Edit", "run_edit"]

_VIEW_BYTES = 1024 * 1024
"""At most this much of a file is shown: a model reads text, and a huge file would flood its context."""
_MOUNT = "/mnt/data/"


@dataclass
class Edit:
    """The outcome of one editor command, in no wire format's shape."""

    command: str
    path: str
    """As the model wrote it."""
    text: str
    """What the model reads: the file's text (view), or a line saying what changed."""
    error_code: str | None = None
    """`file_not_found` or `invalid_tool_input` when the command failed; `text` says why."""
    details: dict[str, Any] = field(default_factory=dict)
    """view: file_type, num_lines, start_line, total_lines; create: is_file_update;
    str_replace: old_start, old_lines, new_start, new_lines, lines."""
    changed: bool = False

    @property
    def file(self) -> str:
        """The path as /mnt/data/<name>, as the container's file records name it."""
        return _MOUNT + _name(self.path)


def _name(path: str) -> str:
    """A path as the code writes it (`/mnt/data/x`, or relative to it) as a name within /mnt/data."""
    if path.startswith(_MOUNT):
        return path[len(_MOUNT) :]
    return path[2:] if path.startswith("./") else path


async def run_edit(sandbox: Sandbox, arguments: str) -> Edit:
    try:
        given = json.loads(arguments)
    except json.JSONDecodeError:
        given = None
    if not isinstance(given, dict) or not isinstance(given.get("path"), str):
        return Edit("", "", "The editor needs a JSON object with a command and a path.", "invalid_tool_input")
    command, path = str(given.get("command", "")), given["path"]
    try:
        if command == "view":
            return await _view(sandbox, command, path, given.get("view_range"))
        if command == "create":
            return await _create(sandbox, command, path, given.get("file_text"))
        if command == "str_replace":
            return await _replace(sandbox, command, path, given.get("old_str"), given.get("new_str"))
    except FileNotFoundInSandbox:
        return Edit(command, path, f"{path}: no such file in /mnt/data.", "file_not_found")
    except InvalidFilePath as exc:
        return Edit(command, path, f"{path}: {exc}", "invalid_tool_input")
    return Edit(command, path, f"Unknown command {command!r}: one of view, create, str_replace.", "invalid_tool_input")


async def _read(sandbox: Sandbox, name: str) -> tuple[str, bool]:
    with sandbox.open_file(name) as (_, fd):
        data = os.read(fd, _VIEW_BYTES + 1)
    return data[:_VIEW_BYTES].decode(errors="replace"), len(data) > _VIEW_BYTES


async def _view(sandbox: Sandbox, command: str, path: str, view_range: Any) -> Edit:
    name = _name(path)
    if name in ("", ".", "/mnt/data"):
        listing = "\n".join(sorted(f.name for f in await sandbox.list_files()))
        return Edit(command, path, listing, details={"file_type": "text", "num_lines": listing.count("\n") + 1})
    text, cut = await _read(sandbox, name)
    lines = text.splitlines()
    start, end = 1, len(lines)
    if isinstance(view_range, list) and len(view_range) == 2 and all(isinstance(n, int) for n in view_range):
        start = max(1, view_range[0])
        end = len(lines) if view_range[1] == -1 else min(len(lines), view_range[1])
    shown = "\n".join(lines[start - 1 : end]) + ("\n[... the file goes on past 1 MB ...]" if cut else "")
    details = {"file_type": "text", "num_lines": end - start + 1, "start_line": start, "total_lines": len(lines)}
    return Edit(command, path, shown, details=details)


async def _create(sandbox: Sandbox, command: str, path: str, file_text: Any) -> Edit:
    if not isinstance(file_text, str):
        return Edit(command, path, "create needs file_text.", "invalid_tool_input")
    name = _name(path)
    existed = any(f.name == name for f in await sandbox.list_files())
    await sandbox.write_file(name, file_text.encode())
    said = f"{'Updated' if existed else 'Created'} {path}."
    return Edit(command, path, said, details={"is_file_update": existed}, changed=True)


async def _replace(sandbox: Sandbox, command: str, path: str, old: Any, new: Any) -> Edit:
    if not isinstance(old, str) or not old or not isinstance(new, str):
        return Edit(command, path, "str_replace needs old_str (not empty) and new_str.", "invalid_tool_input")
    name = _name(path)
    text, cut = await _read(sandbox, name)
    if cut:
        return Edit(command, path, f"{path} is over 1 MB: edit it with code.", "invalid_tool_input")
    found = text.count(old)
    if found != 1:
        said = f"old_str was found {found} times in {path}: it must be found exactly once."
        return Edit(command, path, said, "invalid_tool_input")
    at = text.index(old)
    edited = text[:at] + new + text[at + len(old) :]
    await sandbox.write_file(name, edited.encode())
    first_line = text[:at].count("\n") + 1
    details = {
        "old_start": first_line,
        "old_lines": old.count("\n") + 1,
        "new_start": first_line,
        "new_lines": new.count("\n") + 1,
        "lines": new.splitlines(),
    }
    return Edit(command, path, f"Replaced one occurrence in {path}.", details=details, changed=True)
