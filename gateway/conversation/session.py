"""One model response, whatever the wire format: its history, its container, its files, its run, its record.

A wire format parses its request into a `SessionRequest`, starts a `Session`, renders the session's
loop events in its own shape, and saves what it rendered with `Session.save`. What a follow-up needs
(the items and the container) is stored in our own terms; the rendered body is kept beside them so
that the wire format that made it can return it again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import TypeAdapter

from .._errors import InvalidRequest
from ..workspace.containers import ContainerService
from ..workspace.records import NetworkPolicy, ResponseRecord
from ..workspace.store import Store
from .items import CodeCall, Item
from .loop import LoopEvent, ToolLoop
from .model import FunctionTool, Model, Sampling

__all__ = ["AutoContainer", "ModelSource", "Session", "SessionRequest", "SessionService"]

_ITEMS = TypeAdapter(list[Item])


class ModelSource(Protocol):
    """Where a model name is looked up (the upstreams' router)."""

    async def model(self, name: str) -> Model: ...


@dataclass(frozen=True)
class AutoContainer:
    """A container made for the conversation when it has none that still runs."""

    memory_limit: str = "1g"
    file_ids: Sequence[str] = ()
    network_policy: NetworkPolicy = field(default_factory=NetworkPolicy)


@dataclass(frozen=True)
class SessionRequest:
    id: str
    """The response's id, in the wire format's own shape."""
    model: str
    items: Sequence[Item]
    """This request's new items; a follow-up's history comes before them."""
    container: str | AutoContainer
    """A named container (which must run), or auto."""
    previous: str | None = None
    """The stored response a follow-up continues: its items, and its container while it runs."""
    file_ids: Sequence[str] = ()
    """Uploaded files to put in the container before the model runs."""
    instructions: str | None = None
    max_iterations: int | None = None
    functions: Sequence[FunctionTool] = ()
    max_output_tokens: int | None = None
    sampling: Sampling = field(default_factory=Sampling)


@dataclass
class Session:
    """A started response: where it runs, what the model sees, and the loop's events to render."""

    id: str
    container_id: str
    items: list[Item]
    events: AsyncIterator[LoopEvent]
    _store: Store

    def save(self, created_at: int, body: str, produced: Sequence[Item]) -> None:
        """Keep the rendered response and the items a follow-up continues from."""
        items = _ITEMS.dump_json([*self.items, *produced]).decode()
        record = ResponseRecord(
            id=self.id, created_at=created_at, body=body, items=items, container_id=self.container_id
        )
        self._store.add_response(record)


class SessionService:
    def __init__(self, store: Store, containers: ContainerService, loop: ToolLoop, models: ModelSource) -> None:
        self._store = store
        self._containers = containers
        self._loop = loop
        self._models = models

    async def start(self, request: SessionRequest, check: Callable[[list[Item]], None] = lambda items: None) -> Session:
        """Look the model up, load the history (`check` sees it whole), choose the container, add the
        files, and start the loop; nothing runs until the events are read."""
        model = await self._models.model(request.model)
        history, reuse = self._history(request.previous)
        items = [*history, *request.items]
        check(items)
        container_id = await self._container(request, items, reuse)
        for file_id in request.file_ids:
            await self._containers.add_file_id(container_id, file_id)
        events = self._loop.run(
            model,
            request.instructions,
            items,
            container_id,
            max_iterations=request.max_iterations,
            functions=request.functions,
            max_output_tokens=request.max_output_tokens,
            sampling=request.sampling,
        )
        return Session(request.id, container_id, items, events, self._store)

    def stored_body(self, response_id: str) -> str | None:
        record = self._store.get_response(response_id)
        return record.body if record is not None else None

    def delete(self, response_id: str) -> bool:
        return self._store.delete_response(response_id)

    def _history(self, previous: str | None) -> tuple[list[Item], str | None]:
        """The conversation a follow-up continues, and the container it used."""
        if previous is None:
            return [], None
        record = self._store.get_response(previous)
        if record is None:
            msg = f"Previous response with id '{previous}' not found."
            raise InvalidRequest(msg, "previous_response_id", code="previous_response_not_found")
        return _ITEMS.validate_json(record.items), record.container_id

    async def _container(self, request: SessionRequest, items: list[Item], reuse: str | None) -> str:
        """The one named, or (auto) the conversation's while it lives, or a new one."""
        if isinstance(request.container, str):
            self._containers.sandbox(request.container)  # unknown or expired: the caller hears why
            return request.container
        earlier = [item.container_id for item in reversed(items) if isinstance(item, CodeCall)]
        for candidate in ([reuse] if reuse else []) + earlier:
            if self._containers.is_running(candidate):
                return candidate
        auto = request.container
        record = await self._containers.create(
            name=f"auto {request.id}",
            memory_limit=auto.memory_limit,
            file_ids=auto.file_ids,
            expires_after_minutes=20,
            network_policy=auto.network_policy,
        )
        return record.id
