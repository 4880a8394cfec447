"""OpenAI's wire objects for containers, container files and files, and the requests that make them.

Field names and enum strings follow ../shared/spec/openai.md sections 5 to 10; records become wire
objects here and nowhere else.
"""

from __future__ import annotations

from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from ...workspace.records import ContainerFileRecord, ContainerRecord, FileRecord

__all__ = [
    "ContainerFileObject",
    "ContainerObject",
    "CreateContainerFileRequest",
    "CreateContainerRequest",
    "DeletedObject",
    "ExpiresAfter",
    "FileObject",
    "ListObject",
    "MemoryLimit",
    "NetworkPolicyParam",
]

T = TypeVar("T")
MemoryLimit = Literal["1g", "4g", "16g", "64g"]
FilePurpose = Literal["assistants", "batch", "fine-tune", "vision", "user_data", "evals"]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExpiresAfter(_Wire):
    anchor: Literal["last_active_at"] = "last_active_at"
    minutes: int = Field(default=20, ge=1, le=10_080)


class NetworkPolicyParam(_Wire):
    type: Literal["disabled", "allowlist"]
    allowed_domains: list[str] | None = None
    domain_secrets: list[dict[str, str]] | None = None


class CreateContainerRequest(_Wire):
    model_config = ConfigDict(extra="ignore")  # newer fields (skills, ...) are accepted and ignored

    name: str = Field(min_length=1)
    expires_after: ExpiresAfter | None = None
    file_ids: list[str] = Field(default_factory=list)
    memory_limit: MemoryLimit | None = None
    network_policy: NetworkPolicyParam | None = None


class CreateContainerFileRequest(_Wire):
    file_id: str


class ContainerObject(BaseModel):
    id: str
    object: Literal["container"] = "container"
    name: str
    created_at: int
    status: Literal["running", "expired"]
    expires_after: ExpiresAfter
    last_active_at: int
    memory_limit: MemoryLimit
    network_policy: NetworkPolicyParam

    @classmethod
    def of(cls, record: ContainerRecord) -> ContainerObject:
        policy = record.network_policy
        domains = list(policy.allowed_domains) if policy.type == "allowlist" else None
        return cls(
            id=record.id,
            name=record.name,
            created_at=record.created_at,
            status=record.status.value,
            expires_after=ExpiresAfter(minutes=record.expires_after_minutes),
            last_active_at=record.last_active_at,
            memory_limit=record.memory_limit,  # type: ignore[arg-type]  # validated on the way in
            network_policy=NetworkPolicyParam(type=policy.type, allowed_domains=domains),
        )


class ContainerFileObject(BaseModel):
    id: str
    object: Literal["container.file"] = "container.file"
    container_id: str
    created_at: int
    bytes: int
    path: str
    source: Literal["user", "assistant"]

    @classmethod
    def of(cls, record: ContainerFileRecord) -> ContainerFileObject:
        return cls(**record.model_dump())


class FileObject(BaseModel):
    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: Literal["uploaded", "processed", "error"] = "processed"
    expires_at: int | None = None
    status_details: str | None = None

    @classmethod
    def of(cls, record: FileRecord) -> FileObject:
        return cls(
            id=record.id,
            bytes=record.bytes,
            created_at=record.created_at,
            filename=record.filename,
            purpose=record.purpose,
            expires_at=record.expires_at,
        )


class ListObject(BaseModel, Generic[T]):
    object: Literal["list"] = "list"
    data: list[T]
    first_id: str | None
    last_id: str | None
    has_more: bool


class DeletedObject(BaseModel):
    id: str
    object: Literal["container", "container.deleted", "container.file.deleted", "file"]
    deleted: Literal[True] = True
