"""What the OpenAI routes share: the services from app state, list envelopes, streamed file bodies."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Literal, TypeVar

from fastapi import Query

from ...workspace.records import Page
from ..http import fd_response
from ..services import Containers, Conversations, Files, Sessions
from ._models import ListObject

__all__ = ["Containers", "Conversations", "Files", "Order", "Sessions", "fd_response", "list_object"]

T = TypeVar("T")
W = TypeVar("W")
Order = Annotated[Literal["asc", "desc"], Query()]
_CHUNK = 1024 * 1024


def list_object(page: Page[T], render: Callable[[T], W], ids: Callable[[W], str]) -> ListObject[W]:
    data: Sequence[W] = [render(item) for item in page.items]
    return ListObject[W](
        data=list(data),
        first_id=ids(data[0]) if data else None,
        last_id=ids(data[-1]) if data else None,
        has_more=page.has_more,
    )
