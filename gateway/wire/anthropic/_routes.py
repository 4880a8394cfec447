"""Anthropic's Messages API (full and streamed) with the code execution tool, and its Files API, under
/anthropic.

The code runs in a kernelgate container: the one the request's `container` names (it must still run),
else a new one, as Anthropic's tool does; the response says which in `container: {id, expires_at}`.
The `anthropic-beta` headers are accepted and not needed.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import mimetypes
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, File, Query, Request, UploadFile
from fastapi.responses import JSONResponse, StreamingResponse

from sandbox import SandboxError

from ..._errors import GatewayError, InvalidRequest
from ..._ids import new_hex_id
from ...conversation.loop import LoopEvent
from ...conversation.record import Failure, StoredResponse
from ...conversation.session import AutoContainer, Session, SessionRequest
from ...workspace.containers import ContainerService
from ...workspace.records import ContainerFileRecord, FileRecord
from ..http import drain, fd_response, while_connected
from ..services import Containers, Files, Sessions
from ._errors import error_type
from ._render import MessageStream, container, message_body
from ._request import SHELL_VERSIONS, CreateMessageRequest, parse_messages

__all__ = ["router"]

WIRE = "anthropic"
log = logging.getLogger("kernelgate.gateway")
router = APIRouter(prefix="/anthropic/v1", tags=["anthropic"])


@router.post("/messages", summary="Create a message, running code_execution calls in a sandbox")
async def create_message(
    body: CreateMessageRequest, request: Request, sessions: Sessions, containers: Containers
) -> Any:
    tool = body.code_tool()
    parsed = parse_messages(body.messages)
    named = body.container_id()
    if tool is not None or named is not None:
        place: str | AutoContainer | None = named or AutoContainer(reuse=False)
    else:
        place = None
    session = await sessions.start(
        SessionRequest(
            id=new_hex_id("msg_", 24),
            model=body.model,
            items=parsed.items,
            container=place,
            file_ids=parsed.file_ids,
            instructions=body.instructions(),
            functions=body.functions(),
            max_output_tokens=body.max_tokens,
            sampling=body.sampling(),
            tool_choice=body.choice(),
            output_format=body.output_format(),
            shell=tool is not None and tool.type in SHELL_VERSIONS,
        )
    )
    # Until the model's first event nothing is said: a failure then is an HTTP error in Anthropic's shape.
    events = await while_connected(request, session.opened())
    if body.stream:
        return StreamingResponse(_stream(session, containers, events), media_type="text/event-stream")
    await while_connected(request, drain(events))
    return JSONResponse(message_body(_finish(session), _container(session, containers)))


def _finish(session: Session, failure: Failure | None = None) -> StoredResponse:
    return session.finish(WIRE, {}, failure)


def _container(session: Session, containers: ContainerService) -> dict[str, Any] | None:
    if session.container_id is None:
        return None
    return container(session.container_id, containers.expires_at(session.container_id))


async def _stream(
    session: Session, containers: ContainerService, events: AsyncIterator[LoopEvent]
) -> AsyncIterator[str]:
    stream = MessageStream(session.id, session.model)
    yield stream.opening()
    try:
        async for event in events:
            for line in stream.on(event):
                yield line
    except Exception as exc:  # the stream has begun: the error goes in it, as Anthropic's do
        if not isinstance(exc, GatewayError | SandboxError):
            log.error("Anthropic message %s failed", session.id, exc_info=exc)
        _finish(session, Failure(code="api_error", message=str(exc)))
        status = getattr(exc, "status", None)
        yield stream.error(error_type(status if isinstance(status, int) else 500), str(exc))
        return
    for line in stream.closing(_finish(session), _container(session, containers)):
        yield line


# -- the Files API ----------------------------------------------------------------------------------


def _rfc3339(seconds: int) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).isoformat().replace("+00:00", "Z")


def _upload(record: FileRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "type": "file",
        "filename": record.filename,
        "mime_type": mimetypes.guess_type(record.filename)[0] or "application/octet-stream",
        "size_bytes": record.bytes,
        "created_at": _rfc3339(record.created_at),
        "downloadable": False,
    }


def _made(record: ContainerFileRecord) -> dict[str, Any]:
    name = record.path.rsplit("/", 1)[-1]
    return {
        "id": record.id,
        "type": "file",
        "filename": name,
        "mime_type": mimetypes.guess_type(name)[0] or "application/octet-stream",
        "size_bytes": record.bytes,
        "created_at": _rfc3339(record.created_at),
        "downloadable": True,
    }


@router.post("/files", summary="Upload a file (for container_upload blocks)")
async def upload_file(files: Files, file: Annotated[UploadFile, File()]) -> JSONResponse:
    record = await asyncio.to_thread(files.create, file.filename, "user_data", file.file, None)
    return JSONResponse(_upload(record))


@router.get("/files", summary="List uploaded files")
async def list_files(
    files: Files, limit: Annotated[int, Query(ge=1, le=1000)] = 20, after_id: str | None = None
) -> JSONResponse:
    page = files.list_files(after_id, limit, "desc", None)
    data = [_upload(record) for record in page.items]
    return JSONResponse(
        {
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": page.has_more,
        }
    )


@router.get("/files/{file_id}", summary="A file's metadata: an upload, or a file the code made")
async def file_metadata(file_id: str, files: Files, containers: Containers) -> JSONResponse:
    if file_id.startswith("cfile_"):
        return JSONResponse(_made(containers.find_file(file_id)))
    return JSONResponse(_upload(files.get(file_id, "file_id")))


@router.get("/files/{file_id}/content", summary="Download a file the code made")
async def file_content(file_id: str, files: Files, containers: Containers) -> Any:
    if not file_id.startswith("cfile_"):
        files.get(file_id, "file_id")
        msg = f"File {file_id} is not downloadable: only files the code made can be downloaded."
        raise InvalidRequest(msg, "file_id")
    record = containers.find_file(file_id)
    await containers.sync_files(record.container_id)  # it may have changed or gone since
    record = await containers.get_file(record.container_id, file_id)
    with containers.open_file(record) as fd:
        return fd_response(fd)


@router.delete("/files/{file_id}", summary="Delete a file")
async def delete_file(file_id: str, files: Files, containers: Containers) -> JSONResponse:
    if file_id.startswith("cfile_"):
        record = containers.find_file(file_id)
        await containers.delete_file(record.container_id, file_id)
    else:
        files.get(file_id, "file_id")
        files.delete(file_id)
    return JSONResponse({"id": file_id, "type": "file_deleted"})
