"""What every wire format's routes use, in one typed object the app makes in its lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import HTTPConnection

from ..conversation.session import SessionService
from ..conversation.threads import ConversationService
from ..workspace.containers import ContainerService
from ..workspace.files import FileService

__all__ = ["Services", "services"]


@dataclass(frozen=True)
class Services:
    containers: ContainerService
    files: FileService
    sessions: SessionService
    conversations: ConversationService


def services(connection: HTTPConnection) -> Services:
    """The app's services (a FastAPI dependency)."""
    found = connection.app.state.services
    assert isinstance(found, Services), "the app's lifespan has not run"
    return found
