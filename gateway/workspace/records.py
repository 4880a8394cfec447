"""The gateway's own records of containers and files, stored in SQLite; wire formats render them."""

from __future__ import annotations

import enum
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

__all__ = [
    "ContainerFileRecord",
    "ContainerRecord",
    "ContainerStatus",
    "ConversationItemRecord",
    "ConversationRecord",
    "FileRecord",
    "LegacyResponseRecord",
    "NetworkPolicy",
    "Page",
    "ResponseRecord",
]

T = TypeVar("T")


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class ContainerStatus(enum.StrEnum):
    RUNNING = "running"
    EXPIRED = "expired"


class NetworkPolicy(_Record):
    type: Literal["disabled", "allowlist"] = "disabled"
    allowed_domains: tuple[str, ...] = ()


class ContainerRecord(_Record):
    id: str
    name: str
    created_at: int
    last_active_at: int
    expires_after_minutes: int
    memory_limit: str
    network_policy: NetworkPolicy
    status: ContainerStatus
    sandbox_id: str | None


class ContainerFileRecord(_Record):
    id: str
    container_id: str
    path: str
    """Where the code finds it: /mnt/data/<name>."""
    source: Literal["user", "assistant"]
    bytes: int
    created_at: int


class FileRecord(_Record):
    id: str
    filename: str
    bytes: int
    purpose: str
    created_at: int
    expires_at: int | None


class ResponseRecord(_Record):
    """A stored response; `data` is the conversation layer's own record of it (JSON), opaque here."""

    id: str
    created_at: int
    data: str
    in_progress: bool = False
    """Still running when it was kept (a background response)."""


class ConversationRecord(_Record):
    id: str
    created_at: int
    metadata: dict[str, str]


class ConversationItemRecord(_Record):
    """One item of a conversation; `data` is the conversation layer's own record of it (JSON), opaque here."""

    id: str
    conversation_id: str
    created_at: int
    data: str


class LegacyResponseRecord(_Record):
    """A response as kernelgate 0.1 stored it: its OpenAI body, and the items a follow-up continues from."""

    id: str
    created_at: int
    body: str
    items: str
    container_id: str | None


class Page(_Record, Generic[T]):
    """One page of a listing in `order`, and whether more follow."""

    items: tuple[T, ...]
    has_more: bool
