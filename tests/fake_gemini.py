"""The fake's Gemini side: generateContent and streamGenerateContent (SSE), checked against google-genai's types.

Requests are validated field by field with the SDK's pydantic types (which forbid unknown fields), and
held to the rules the API enforces: roles alternate, each model turn's calls are answered one for one,
and a call goes back with the thought signature it came with. Every answer the fake sends is validated
as the SDK's `GenerateContentResponse`.
"""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

from google.genai import types
from pydantic import BaseModel

from .fake_script import Reply, Seen, split, sse

_FIELDS: dict[str, type[BaseModel]] = {
    "contents": types.Content,
    "tools": types.Tool,
    "toolConfig": types.ToolConfig,
    "systemInstruction": types.Content,
    "generationConfig": types.GenerationConfig,
}


def signature(number: int) -> str:
    return base64.b64encode(f"signature-{number}".encode()).decode()


def check_request(body: dict[str, Any], headers: dict[str, str], key: str | None) -> None:
    """Raise unless the request is one the Gemini API takes."""
    sent = headers.get("x-goog-api-key")
    assert sent, "no x-goog-api-key header"
    assert key is None or sent == key, f"the key sent is not the upstream's: {sent!r}"
    unknown = set(body) - set(_FIELDS)
    assert not unknown, f"fields generateContent does not have: {unknown}"
    for name, model in _FIELDS.items():
        values = body.get(name)
        for value in values if isinstance(values, list) else [values] if values is not None else []:
            model.model_validate(value)
    contents = body["contents"]
    roles = [content["role"] for content in contents]
    assert all(a != b for a, b in itertools.pairwise(roles)), f"roles do not alternate: {roles}"
    for turn, answer in itertools.pairwise(contents):
        calls = [part for part in turn["parts"] if "functionCall" in part]
        responses = [part for part in answer["parts"] if "functionResponse" in part]
        if calls:
            names = [part["functionCall"]["name"] for part in calls]
            answered = [part["functionResponse"]["name"] for part in responses]
            assert names == answered, f"calls {names} answered by responses {answered}"
            assert "thoughtSignature" in calls[0], "a call came back without its thought signature"
    assert not any("functionCall" in part for part in contents[-1]["parts"]), "the last turn's calls are unanswered"


def error(status: int) -> dict[str, Any]:
    kind = {400: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED"}.get(status, "INTERNAL")
    return {"error": {"code": status, "message": f"scripted {status}", "status": kind}}


def seen(model: str, body: dict[str, Any]) -> Seen:
    results, images = [], 0
    for content in body["contents"]:
        if content["role"] != "user":
            continue
        for part in content["parts"]:
            if "functionResponse" in part:
                results.append(part["functionResponse"]["response"]["output"])
            images += "inlineData" in part
    declarations = [d for tool in body.get("tools", []) for d in tool.get("functionDeclarations", [])]
    system = body.get("systemInstruction")
    config = body.get("generationConfig", {})
    return Seen(
        api="gemini",
        model=model,
        body=body,
        tools=[declaration["name"] for declaration in declarations],
        results=results,
        images=images,
        system="".join(part["text"] for part in system["parts"]) if system else None,
        max_tokens=config.get("maxOutputTokens"),
        sampling=(config.get("temperature"), config.get("topP")),
    )


def _chunk(model: str, parts: list[dict[str, Any]], finish: str | None = None) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish is not None:
        candidate["finishReason"] = finish
    usage = {
        "promptTokenCount": 8,
        "toolUsePromptTokenCount": 2,
        "candidatesTokenCount": 3,
        "thoughtsTokenCount": 2,
        "totalTokenCount": 15,
    }
    chunk = {"candidates": [candidate], "usageMetadata": usage, "modelVersion": model, "responseId": "fake"}
    types.GenerateContentResponse.model_validate(chunk)
    return chunk


def _call_parts(reply: Reply, number: int) -> list[dict[str, Any]]:
    call = reply.call()
    if call is None or reply.cut:  # Gemini sends calls whole: a cut answer has none
        return []
    first = {"functionCall": {"name": call[0], "args": json.loads(call[1])}, "thoughtSignature": signature(number)}
    more = [{"functionCall": {"name": "python", "args": {"code": code}}} for code in reply.parallel]
    return [first, *more]


def chunks(model: str, reply: Reply, number: int) -> list[dict[str, Any]]:
    """The streamed answer: the text in pieces, then the calls and the finish reason."""
    pieces = [_chunk(model, [{"text": piece}]) for piece in split(reply.text or "", reply.pieces)]
    return [*pieces, _chunk(model, _call_parts(reply, number), _finish(reply))]


def _finish(reply: Reply) -> str:
    return "SAFETY" if reply.refused else "MAX_TOKENS" if reply.cut else "STOP"


async def stream(model: str, reply: Reply, number: int) -> AsyncIterator[str]:
    for chunk in chunks(model, reply, number):
        yield sse(chunk).replace("\n", "\r\n")  # as Google's servers frame it


def whole(model: str, reply: Reply, number: int) -> dict[str, Any]:
    parts = [{"text": reply.text}] if reply.text else []
    return _chunk(model, [*parts, *_call_parts(reply, number)], _finish(reply))
