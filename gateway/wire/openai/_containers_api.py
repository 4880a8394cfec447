"""OpenAI's Containers and Container Files APIs: /v1/containers and /v1/containers/{id}/files."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from ..._errors import InvalidRequest
from ...workspace.records import NetworkPolicy
from ._models import (
    ContainerFileObject,
    ContainerObject,
    CreateContainerFileRequest,
    CreateContainerRequest,
    DeletedObject,
    ListObject,
)
from ._shared import Containers, Order, fd_response, list_object

__all__ = ["router"]

router = APIRouter(prefix="/v1/containers", tags=["containers"])
Limit = Annotated[int, Query(ge=1, le=100)]

_FILE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
            "application/json": {"schema": CreateContainerFileRequest.model_json_schema()},
        },
    }
}


@router.post("", response_model=ContainerObject, summary="Create a container")
async def create_container(body: CreateContainerRequest, containers: Containers) -> ContainerObject:
    policy = body.network_policy
    record = await containers.create(
        name=body.name,
        memory_limit=body.memory_limit or "1g",
        file_ids=body.file_ids,
        expires_after_minutes=body.expires_after.minutes if body.expires_after else 20,
        network_policy=NetworkPolicy(type=policy.type, allowed_domains=tuple(policy.allowed_domains or ()))
        if policy
        else NetworkPolicy(),
    )
    return ContainerObject.of(record)


@router.get("", response_model=ListObject[ContainerObject], summary="List containers")
async def list_containers(
    containers: Containers, after: str | None = None, limit: Limit = 20, order: Order = "desc", name: str | None = None
) -> ListObject[ContainerObject]:
    page = containers.list_containers(after, limit, order, name)
    return list_object(page, ContainerObject.of, lambda c: c.id)


@router.get("/{container_id}", response_model=ContainerObject, summary="Retrieve a container")
async def retrieve_container(container_id: str, containers: Containers) -> ContainerObject:
    return ContainerObject.of(containers.get(container_id))


@router.delete("/{container_id}", response_model=DeletedObject, summary="Delete a container")
async def delete_container(container_id: str, containers: Containers) -> DeletedObject:
    await containers.delete(container_id)
    return DeletedObject(id=container_id, object="container.deleted")


@router.post(
    "/{container_id}/files",
    response_model=ContainerFileObject,
    summary="Create a container file (multipart upload, or JSON {file_id})",
    openapi_extra=_FILE_BODY,
)
async def create_container_file(container_id: str, request: Request, containers: Containers) -> ContainerFileObject:
    containers.sandbox(container_id)  # an unknown or expired container fails before the body is read
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        async with request.form() as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                msg = "Missing required parameter: 'file'."
                raise InvalidRequest(msg, "file")
            record = await containers.add_upload(container_id, upload.filename, upload.file)
        return ContainerFileObject.of(record)
    try:
        body = CreateContainerFileRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        message = 'Send the file as multipart/form-data field \'file\', or JSON {"file_id": "file-..."}.'
        raise InvalidRequest(message, "file_id") from exc
    return ContainerFileObject.of(await containers.add_file_id(container_id, body.file_id))


@router.get("/{container_id}/files", response_model=ListObject[ContainerFileObject], summary="List container files")
async def list_container_files(
    container_id: str, containers: Containers, after: str | None = None, limit: Limit = 20, order: Order = "desc"
) -> ListObject[ContainerFileObject]:
    page = await containers.list_files(container_id, after, limit, order)
    return list_object(page, ContainerFileObject.of, lambda f: f.id)


@router.get("/{container_id}/files/{file_id}", response_model=ContainerFileObject, summary="Retrieve a container file")
async def retrieve_container_file(container_id: str, file_id: str, containers: Containers) -> ContainerFileObject:
    return ContainerFileObject.of(await containers.get_file(container_id, file_id))


@router.get(
    "/{container_id}/files/{file_id}/content",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
    summary="Retrieve a container file's bytes",
)
async def container_file_content(container_id: str, file_id: str, containers: Containers) -> StreamingResponse:
    record = await containers.get_file(container_id, file_id)
    with containers.open_file(record) as fd:
        return fd_response(fd)


@router.delete("/{container_id}/files/{file_id}", response_model=DeletedObject, summary="Delete a container file")
async def delete_container_file(container_id: str, file_id: str, containers: Containers) -> DeletedObject:
    await containers.delete_file(container_id, file_id)
    return DeletedObject(id=file_id, object="container.file.deleted")
