"""OpenAI's Files API: /v1/files."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import FileResponse

from ..._errors import InvalidRequest
from ._models import DeletedObject, FileObject, FilePurpose, ListObject
from ._shared import Files, Order, list_object

__all__ = ["router"]

router = APIRouter(prefix="/v1/files", tags=["files"])


@router.post("", response_model=FileObject, summary="Upload a file")
async def create_file(
    files: Files,
    file: Annotated[UploadFile, File()],
    purpose: Annotated[FilePurpose, Form()],
    anchor: Annotated[Literal["created_at"] | None, Form(alias="expires_after[anchor]")] = None,
    seconds: Annotated[int | None, Form(alias="expires_after[seconds]", ge=3600, le=2_592_000)] = None,
) -> FileObject:
    if (anchor is None) != (seconds is None):
        msg = "expires_after needs both anchor and seconds."
        raise InvalidRequest(msg, "expires_after")
    record = await asyncio.to_thread(files.create, file.filename, purpose, file.file, seconds)
    return FileObject.of(record)


@router.get("", response_model=ListObject[FileObject], summary="List files")
async def list_files(
    files: Files,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 10_000,
    order: Order = "desc",
    purpose: str | None = None,
) -> ListObject[FileObject]:
    return list_object(files.list_files(after, limit, order, purpose), FileObject.of, lambda f: f.id)


@router.get("/{file_id}", response_model=FileObject, summary="Retrieve a file")
async def retrieve_file(file_id: str, files: Files) -> FileObject:
    return FileObject.of(files.get(file_id))


@router.get(
    "/{file_id}/content",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
    summary="Retrieve a file's bytes",
)
async def file_content(file_id: str, files: Files) -> FileResponse:
    record = files.get(file_id)
    return FileResponse(files.path(record), media_type="application/octet-stream")


@router.delete("/{file_id}", response_model=DeletedObject, summary="Delete a file")
async def delete_file(file_id: str, files: Files) -> DeletedObject:
    files.delete(file_id)
    return DeletedObject(id=file_id, object="file")
