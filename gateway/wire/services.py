"""What every wire format's routes use, in one typed object the app makes in its lifespan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from ..conversation.session import SessionService
from ..conversation.threads import ConversationService
from ..workspace.containers import ContainerService
from ..workspace.files import FileService

__all__ = ["Containers", "Conversations", "Files", "Services", "Sessions", "services"]


@dataclass(frozen=True)
class Services:
    containers: ContainerService
    files: FileService
    sessions: SessionService
    conversations: ConversationService


def services(connection: HTTPConnection) -> Services:
    """The app's services. The dependencies below are `async def` although they never wait: FastAPI runs
    a plain `def` dependency in its thread pool, a hop that cost every request about 0.3 ms."""
    found = connection.app.state.services
    assert isinstance(found, Services), "the app's lifespan has not run"
    return found


async def _containers(connection: HTTPConnection) -> ContainerService:
    return services(connection).containers


async def _files(connection: HTTPConnection) -> FileService:
    return services(connection).files


async def _sessions(connection: HTTPConnection) -> SessionService:
    return services(connection).sessions


async def _conversations(connection: HTTPConnection) -> ConversationService:
    return services(connection).conversations


Containers = Annotated[ContainerService, Depends(_containers)]
Files = Annotated[FileService, Depends(_files)]
Sessions = Annotated[SessionService, Depends(_sessions)]
Conversations = Annotated[ConversationService, Depends(_conversations)]
