"""Plain code out of a streamed function call's JSON arguments, as the fragments arrive.

A model that calls `python` streams `{"code": "import os\\nprint(1)"}` in arbitrary pieces; clients of
the hosted tool expect `code_interpreter_call_code.delta` events with plain code. This decoder yields
each newly decodable part of the `code` string, holding back an escape split across two fragments.
"""

from __future__ import annotations

import json
import re

__all__ = ["CodeArgumentDecoder", "code_of"]

_STARTS: dict[str, re.Pattern[str]] = {}
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def code_of(arguments: str, key: str = "code") -> str:
    """The `key` (python's `code`, bash's `command`) of complete arguments; a bare string (some models
    send only the code) is taken as is."""
    if not key:
        return arguments
    try:
        parsed = json.loads(arguments)
    except json.JSONDecodeError:
        return arguments
    if isinstance(parsed, dict) and isinstance(parsed.get(key), str):
        return str(parsed[key])
    return parsed if isinstance(parsed, str) else arguments


class CodeArgumentDecoder:
    def __init__(self, key: str = "code") -> None:
        self._start = _STARTS.setdefault(key, re.compile(rf'"{key}"\s*:\s*"'))
        self._raw = ""
        self._position: int | None = None  # where the undecoded part of the code string begins
        self._done = False

    def feed(self, fragment: str) -> str:
        """The code decoded from this fragment on (possibly empty)."""
        self._raw += fragment
        if self._done:
            return ""
        if self._position is None:
            match = self._start.search(self._raw)
            if match is None:
                return ""
            self._position = match.end()
        decoded, self._position, self._done = _decode(self._raw, self._position)
        return decoded


def _decode(raw: str, position: int) -> tuple[str, int, bool]:
    out: list[str] = []
    while position < len(raw):
        char = raw[position]
        if char == '"':
            return "".join(out), position + 1, True
        if char != "\\":
            out.append(char)
            position += 1
            continue
        if position + 1 >= len(raw):
            break  # the escape continues in the next fragment
        kind = raw[position + 1]
        if kind == "u":
            if position + 6 > len(raw):
                break
            point = int(raw[position + 2 : position + 6], 16)
            if 0xD800 <= point < 0xDC00:  # a surrogate pair: wait for, and join, its second half
                if position + 12 > len(raw):
                    break
                low = int(raw[position + 8 : position + 12], 16)
                point = 0x10000 + ((point - 0xD800) << 10) + (low - 0xDC00)
                position += 6
            out.append(chr(point))
            position += 6
        else:
            out.append(_ESCAPES.get(kind, kind))
            position += 2
    return "".join(out), position, False
