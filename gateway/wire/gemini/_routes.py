"""Gemini's generateContent and streamGenerateContent (SSE) with the codeExecution tool, under /gemini.

The google-genai SDK asks `/{version}/models/{model}:{method}` (v1 by default, v1beta for older clients
and HasteKit); a model name may itself contain a slash (`kernelgate/exec`). Each request is a stateless
turn as Gemini's are: the code runs in a container kept for the conversation, found again through the
ids of the `executableCode` parts the client sends back, and renewed if it has expired.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from sandbox import SandboxError

from ..._errors import GatewayError, NotFound
from ..._ids import new_hex_id
from ...conversation.loop import LoopEvent
from ...conversation.record import Failure, StoredResponse
from ...conversation.session import AutoContainer, Session, SessionRequest
from ..http import drain, while_connected
from ..services import Sessions
from ._render import chunk, event_parts, response_body
from ._request import GenerateContentRequest, parse_contents

__all__ = ["router"]

WIRE = "gemini"
log = logging.getLogger("kernelgate.gateway")
router = APIRouter(prefix="/gemini", tags=["gemini"])

_METHODS = ("generateContent", "streamGenerateContent")
Version = Literal["v1", "v1beta", "v1alpha"]


@router.post(
    "/{version}/models/{target:path}", summary="generateContent / streamGenerateContent, running codeExecution"
)
async def generate_content(
    version: Literal["v1", "v1beta", "v1alpha"],
    target: str,
    body: GenerateContentRequest,
    request: Request,
    sessions: Sessions,
) -> Any:
    model, _, method = target.rpartition(":")
    if method not in _METHODS or not model:
        raise NotFound(target, kind="Method", message=f"Method not found: models/{target}.")
    parsed = parse_contents(body.contents)
    session = await sessions.start(
        SessionRequest(
            id=new_hex_id("", 24),
            model=model,
            items=parsed.items,
            container=AutoContainer(renew_expired=True) if body.code_execution() else None,
            files=parsed.files,
            instructions=body.instructions(),
            functions=body.functions(),
            max_output_tokens=(body.generation_config.max_output_tokens if body.generation_config else None),
            sampling=body.sampling(),
            tool_choice=body.choice(),
            output_format=body.output_format(),
        )
    )
    # Until the model's first event nothing is said: a failure then is an HTTP error in Google's shape.
    events = await while_connected(request, session.opened())
    if method == "streamGenerateContent":
        return StreamingResponse(_stream(session, model, events), media_type="text/event-stream")
    await while_connected(request, drain(events))
    return JSONResponse(response_body(_finish(session)))


def _finish(session: Session) -> StoredResponse:
    # Kept so that a later turn finds its calls' container again by their ids.
    return session.finish(WIRE, {})


async def _stream(session: Session, model: str, events: AsyncIterator[LoopEvent]) -> AsyncIterator[str]:
    try:
        async for event in events:
            parts = event_parts(event)
            if parts:
                yield _sse(chunk(session.id, model, parts))
    except Exception as exc:  # the stream has begun: the error goes in it, as Google's do
        if not isinstance(exc, GatewayError | SandboxError):
            log.error("Gemini response %s failed", session.id, exc_info=exc)
        session.finish(WIRE, {}, Failure(code="server_error", message=str(exc)))
        yield _sse({"error": {"code": 500, "message": str(exc), "status": "INTERNAL"}})
        return
    yield _sse(chunk(session.id, model, [], _finish(session)))


def _sse(body: dict[str, Any]) -> str:
    return f"data: {json.dumps(body, separators=(',', ':'))}\r\n\r\n"
