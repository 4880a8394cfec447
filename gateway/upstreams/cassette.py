"""Record and replay of upstream model exchanges, for hermetic tests that once ran against a real model.

An httpx2 transport under the openai SDK: in `record` mode it passes each request on and appends the
exchange to the cassette file; in `replay` mode it answers from the file and never opens a connection.
Requests are matched on method, path and JSON body, with the ids kernelgate makes afresh each run
(`ci_…`, `msg_…`, `cntr_…`, `cfile_…`, upload prefixes in /mnt/data paths) replaced by placeholders
numbered in order of appearance; equal requests are answered in the order they were recorded.

The cassette is indented JSON:

    {"kernelgate_cassette": 1,
     "interactions": [{"request": {"method": "POST", "path": "/v1/chat/completions", "body": {...}},
                       "response": {"status": 200, "content_type": "text/event-stream",
                                    "body": "data: {...}\\n\\n..."}}]}
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any, Literal

import httpx2  # the openai SDK's HTTP library: this is a transport under it

from ..conversation.model import ERROR_CODE_HEADER

__all__ = ["CassetteTransport"]

_FRESH_IDS = re.compile(r"\b(ci|msg|cntr)_[0-9a-f]{48}\b|\bcfile_[0-9a-f]{32}\b|(?<=/mnt/data/)[0-9a-f]{32}(?=-)")


def normalized(text: str) -> str:
    """The text with each id kernelgate generated replaced by a placeholder numbered by first appearance."""
    seen: dict[str, str] = {}

    def placeholder(match: re.Match[str]) -> str:
        value = match.group(0)
        if value not in seen:
            kind = value.split("_", 1)[0] if "_" in value else "upload"
            seen[value] = f"<{kind}:{len(seen) + 1}>"
        return seen[value]

    return _FRESH_IDS.sub(placeholder, text)


def _key(method: str, path: str, body: bytes) -> str:
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, ensure_ascii=False) if body else ""
    except ValueError:
        canonical = body.decode(errors="replace")
    return f"{method} {path} {normalized(canonical)}"


class CassetteTransport(httpx2.AsyncBaseTransport):
    def __init__(self, path: Path, mode: Literal["record", "replay"]) -> None:
        self._path = path
        self._mode = mode
        self._lock = threading.Lock()
        self._inner = httpx2.AsyncHTTPTransport() if mode == "record" else None
        self._interactions: list[dict[str, Any]] = []
        if mode == "replay":
            self._interactions = self._load()
        self._used = [False] * len(self._interactions)

    def _load(self) -> list[dict[str, Any]]:
        try:
            data = json.loads(self._path.read_text())
        except FileNotFoundError:
            msg = f"KERNELGATE_CASSETTE {self._path} does not exist: record it first (KERNELGATE_CASSETTE_MODE=record)."
            raise ValueError(msg) from None
        return list(data["interactions"])

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        body = await request.aread()
        key = _key(request.method, request.url.path, body)
        if self._mode == "replay":
            return self._replay(key, request)
        assert self._inner is not None
        response = await self._inner.handle_async_request(request)
        content = await response.aread()
        self._record(request, body, response, content)
        return httpx2.Response(response.status_code, headers=response.headers, content=content, request=request)

    def _replay(self, key: str, request: httpx2.Request) -> httpx2.Response:
        for index, interaction in enumerate(self._interactions):
            saved = interaction["request"]
            body = json.dumps(saved["body"]).encode() if saved.get("body") is not None else b""
            if not self._used[index] and _key(saved["method"], saved["path"], body) == key:
                self._used[index] = True
                answer = interaction["response"]
                headers = {"content-type": answer.get("content_type") or "application/json"}
                return httpx2.Response(
                    answer["status"], headers=headers, content=answer["body"].encode(), request=request
                )
        message = (
            f"No recorded answer in the cassette {self._path} for {request.method} {request.url.path} "
            f"(request {sum(self._used) + 1} of this run): record the cassette again."
        )
        error = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": "cassette_miss"}}
        return httpx2.Response(404, json=error, headers={ERROR_CODE_HEADER: "cassette_miss"}, request=request)

    def _record(self, request: httpx2.Request, body: bytes, response: httpx2.Response, content: bytes) -> None:
        try:
            parsed_body: Any = json.loads(body) if body else None
        except ValueError:
            parsed_body = body.decode(errors="replace")
        interaction = {
            "request": {"method": request.method, "path": request.url.path, "body": parsed_body},
            "response": {
                "status": response.status_code,
                "content_type": response.headers.get("content-type"),
                "body": content.decode(errors="replace"),
            },
        }
        with self._lock:
            self._interactions.append(interaction)
            document = {"kernelgate_cassette": 1, "interactions": self._interactions}
            self._path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self._path.with_suffix(self._path.suffix + ".tmp")
            temporary.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
            temporary.replace(self._path)

    async def aclose(self) -> None:
        if self._inner is not None:
            await self._inner.aclose()
