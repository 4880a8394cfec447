"""One model response, whatever the wire format: its history, its container, its files, its run, its record.

A wire format parses its request into a `SessionRequest`, starts a `Session`, renders the session's
loop events in its own shape, and ends it with `Session.finish`, which gives (and, when asked, keeps)
the response as a `StoredResponse`: in our own terms, for that wire format to render again and for a
follow-up in any format to continue.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import JsonValue

from .._errors import InvalidRequest
from .._logs import bind
from ..workspace.containers import ContainerService
from ..workspace.records import ContainerStatus, NetworkPolicy, ResponseRecord
from ..workspace.store import Store
from .items import AssistantMessage, CodeCall, FunctionCall, Item
from .loop import (
    CallFinished,
    FunctionCallMade,
    LoopEvent,
    LoopStopped,
    MessageFinished,
    Run,
    ToolLoop,
    UsageReported,
)
from .model import FunctionTool, Model, OutputFormat, Sampling, ToolChoice
from .record import Failure, Outcome, StoredResponse
from .threads import ConversationService

__all__ = [
    "AutoContainer",
    "InlineFile",
    "ItemReference",
    "ModelSource",
    "Session",
    "SessionRequest",
    "SessionService",
]


class ModelSource(Protocol):
    """Where a model name is looked up (the upstreams' router)."""

    async def model(self, name: str) -> Model: ...


@dataclass(frozen=True)
class AutoContainer:
    """A container made for the conversation when it has none that still runs."""

    memory_limit: str = "1g"
    file_ids: Sequence[str] = ()
    network_policy: NetworkPolicy = field(default_factory=NetworkPolicy)
    reuse: bool = True
    """Run in the conversation's container while it lives (OpenAI's auto mode, Gemini); False: a new
    container for each request that names none (Anthropic's)."""
    renew_expired: bool = False
    """When the conversation's container has expired, make a new one (a wire format without containers)
    rather than refuse, as OpenAI's auto mode does."""


@dataclass(frozen=True)
class ItemReference:
    """An item of a stored response, by its id: as if it had been sent again in full."""

    id: str
    where: str
    """Where the request named it (`input[3]`), for the error when it is unknown."""
    fallback: Item | None = None
    """What stands in for it when no stored response has it (a client replaying items in full); None: a 400."""


@dataclass(frozen=True)
class InlineFile:
    """A file sent in the request itself, for the container's /mnt/data."""

    filename: str
    data: bytes


@dataclass(frozen=True)
class SessionRequest:
    id: str
    """The response's id, in the wire format's own shape."""
    model: str
    items: Sequence[Item | ItemReference]
    """This request's new items; a follow-up's history comes before them."""
    container: str | AutoContainer | None
    """A named container (which must run), or auto; None: the model has no python tool."""
    previous: str | None = None
    """The stored response a follow-up continues: its items, and its container while it runs."""
    file_ids: Sequence[str] = ()
    """Uploaded files to put in the container before the model runs (once per container)."""
    files: Sequence[InlineFile] = ()
    """Files sent inline, likewise once per container."""
    instructions: str | None = None
    max_tool_calls: int | None = None
    functions: Sequence[FunctionTool] = ()
    max_output_tokens: int | None = None
    sampling: Sampling = field(default_factory=Sampling)
    tool_choice: ToolChoice = field(default_factory=ToolChoice)
    output_format: OutputFormat | None = None
    background: bool = False
    conversation: str | None = None
    """A kept conversation: its items are the history, and this response's input and output join it."""
    shell: bool = False
    """Offer a bash tool beside python, in the same sandbox."""


class Session:
    """A started response: where it runs, what the model sees, and the loop's events to render.

    Reading `events` also keeps the response's own account (its items, tokens and why it stopped) for
    `finish`, so a wire format renders and never has to remember.
    """

    def __init__(
        self,
        request: SessionRequest,
        new_items: list[Item],
        container_id: str | None,
        history: list[Item],
        events: AsyncIterator[LoopEvent],
        store: Store,
        conversations: ConversationService,
    ) -> None:
        self.id = request.id
        self.model = request.model
        self.background = request.background
        self.created_at = int(time.time())
        self.container_id = container_id
        self.history = history
        self.input = new_items
        self.output: list[Item] = []
        self.events = self._account(events)
        self._incomplete_reason: str | None = None
        self._tokens = [0, 0]
        self._store = store
        self._conversations = conversations
        self.conversation = request.conversation

    async def opened(self) -> AsyncIterator[LoopEvent]:
        """The events, once the model has begun to answer: a failure before that (the upstream down,
        refusing, out of reach) raises here, while the client can still be answered with an HTTP error."""
        first = await anext(self.events, None)
        return _chained(first, self.events)

    @property
    def items(self) -> list[Item]:
        """The conversation the model sees."""
        return [*self.history, *self.input]

    async def _account(self, events: AsyncIterator[LoopEvent]) -> AsyncIterator[LoopEvent]:
        async for event in events:
            if isinstance(event, CallFinished):
                self.output.append(event.call)
            elif isinstance(event, MessageFinished):
                self.output.append(event.message)
            elif isinstance(event, FunctionCallMade):
                self.output.append(event.call)
            elif isinstance(event, UsageReported):
                self._tokens[0] += event.input_tokens
                self._tokens[1] += event.output_tokens
            elif isinstance(event, LoopStopped):
                self._incomplete_reason = event.reason
            yield event

    def finish(
        self,
        wire: str,
        parameters: dict[str, JsonValue],
        failure: Failure | None = None,
        keep: bool = True,
        *,
        status: Outcome | None = None,
    ) -> StoredResponse:
        """The response as it ended (or, with `status` in_progress, as it stands); kept for GET and
        follow-ups when `keep`."""
        if status is None and failure is not None:
            status = Outcome.FAILED
        elif status is None:
            status = Outcome.INCOMPLETE if self._incomplete_reason else Outcome.COMPLETED
        response = StoredResponse(
            id=self.id,
            wire=wire,
            model=self.model,
            created_at=self.created_at,
            completed_at=None if status is Outcome.IN_PROGRESS else int(time.time()),
            status=status,
            incomplete_reason=self._incomplete_reason if status is Outcome.INCOMPLETE else None,
            error=failure,
            input_tokens=self._tokens[0],
            output_tokens=self._tokens[1],
            container_id=self.container_id,
            history=tuple(self.history),
            input=tuple(self.input),
            output=tuple(self.output),
            parameters=parameters,
            background=self.background,
        )
        if self.conversation is not None and status is not Outcome.IN_PROGRESS:
            self._conversations.add(self.conversation, [*self.input, *self.output])
        if keep:
            data = response.model_dump_json()
            named = [item.id for item in self.output if isinstance(item, AssistantMessage | CodeCall | FunctionCall)]
            record = ResponseRecord(
                id=self.id, created_at=self.created_at, data=data, in_progress=status is Outcome.IN_PROGRESS
            )
            self._store.add_response(record, named)
        return response


class SessionService:
    def __init__(
        self,
        store: Store,
        containers: ContainerService,
        loop: ToolLoop,
        models: ModelSource,
        conversations: ConversationService,
    ) -> None:
        self._store = store
        self._conversations = conversations
        self._containers = containers
        self._loop = loop
        self._models = models
        self._background: dict[str, asyncio.Task[None]] = {}

    def detach(self, session: Session, run: Coroutine[Any, Any, None]) -> None:
        """Run a background response's `run` apart from any request, until it ends or is cancelled."""
        task = asyncio.get_running_loop().create_task(run, name=f"background {session.id}")
        self._background[session.id] = task
        task.add_done_callback(lambda _: self._background.pop(session.id, None))

    async def cancel(self, response_id: str) -> bool:
        """Cancel a running background response (its code is interrupted); whether it was running."""
        task = self._background.get(response_id)
        if task is None:
            return False
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return True

    async def close(self) -> None:
        """Stop every background response (at shutdown, interrupting its code); each is kept as failed."""
        running = dict(self._background)
        for task in running.values():
            task.cancel()
        await asyncio.gather(*running.values(), return_exceptions=True)
        for response_id in running:
            record = self._store.get_response(response_id)
            if record is not None:
                self._fail(record, "The gateway stopped while this background response ran.")

    def fail_interrupted(self) -> int:
        """Mark the background responses a gateway left running when it died as failed; how many."""
        records = self._store.responses_in_progress()
        for record in records:
            self._fail(record, "The gateway stopped while this background response ran.")
        return len(records)

    def _fail(self, record: ResponseRecord, message: str) -> None:
        stored = StoredResponse.model_validate_json(record.data)
        update = {"status": Outcome.FAILED, "completed_at": int(time.time())}
        failed = stored.model_copy(update={**update, "error": Failure(code="server_error", message=message)})
        self._store.add_response(record.model_copy(update={"data": failed.model_dump_json(), "in_progress": False}))

    async def start(self, request: SessionRequest, check: Callable[[list[Item]], None] = lambda items: None) -> Session:
        """Look the model up, load the history (`check` sees it whole), choose the container, add the
        files, and start the loop; nothing runs until the events are read."""
        bind(response_id=request.id)
        model = await self._models.model(request.model)
        if request.conversation is not None and request.previous is not None:
            msg = (
                "Mutually exclusive parameters: Ensure you are only providing one of: "
                "'previous_response_id' or 'conversation'."
            )
            raise InvalidRequest(msg, "conversation")
        if request.conversation is not None:
            history, reuse = self._conversations.history(request.conversation), None
        else:
            history, reuse = self._history(request.previous)
        read: dict[str, StoredResponse | None] = {}  # a replay names many items of the same response
        new_items = [self._resolve(item, read) if isinstance(item, ItemReference) else item for item in request.items]
        items = [*history, *new_items]
        check(items)
        container_id = await self._container(request, items, reuse)
        if container_id is not None:
            bind(container_id=container_id)
            # The auto tool's files (a new container has them already) and the input's, once each.
            auto_files = request.container.file_ids if isinstance(request.container, AutoContainer) else ()
            for file_id in dict.fromkeys([*auto_files, *request.file_ids]):
                await self._containers.add_file_id(container_id, file_id, once=True)
            for inline in request.files:
                await self._containers.add_data_once(container_id, inline.filename, inline.data)
        run = Run(
            request.instructions,
            items,
            container_id,
            functions=request.functions,
            max_output_tokens=request.max_output_tokens,
            max_tool_calls=request.max_tool_calls,
            sampling=request.sampling,
            tool_choice=request.tool_choice,
            output_format=request.output_format,
            shell=request.shell,
        )
        events = self._loop.run(model, run)
        return Session(request, new_items, container_id, history, events, self._store, self._conversations)

    def _resolve(self, reference: ItemReference, read: dict[str, StoredResponse | None]) -> Item:
        """The item a reference names, from the stored response that produced it (each response read once)."""
        response_id = self._store.response_of_item(reference.id)
        if response_id is not None and response_id not in read:
            read[response_id] = self.stored(response_id)
        stored = read.get(response_id) if response_id else None
        for item in stored.output if stored else ():
            if getattr(item, "id", None) == reference.id:
                return item
        if reference.fallback is not None:
            return reference.fallback
        msg = f"Item with id '{reference.id}' not found."
        raise InvalidRequest(msg, reference.where)

    def stored(self, response_id: str) -> StoredResponse | None:
        record = self._store.get_response(response_id)
        return StoredResponse.model_validate_json(record.data) if record is not None else None

    def delete(self, response_id: str) -> bool:
        return self._store.delete_response(response_id)

    def _history(self, previous: str | None) -> tuple[list[Item], str | None]:
        """The conversation a follow-up continues, and the container it used."""
        if previous is None:
            return [], None
        stored = self.stored(previous)
        if stored is None:
            msg = f"Previous response with id '{previous}' not found."
            raise InvalidRequest(msg, "previous_response_id", code="previous_response_not_found")
        return stored.conversation, stored.container_id

    async def _container(self, request: SessionRequest, items: list[Item], reuse: str | None) -> str | None:
        """The one named; or (auto) the conversation's, which must still run, else a new one; or none."""
        if request.container is None:
            return None
        if isinstance(request.container, str):
            self._containers.sandbox(request.container)  # unknown or expired: the caller hears why
            return request.container
        auto = request.container
        earlier = [item.container_id for item in reversed(items) if isinstance(item, CodeCall)] if auto.reuse else []
        conversation = (reuse if auto.reuse else None) or next(iter(earlier), None)
        if conversation is not None and self._containers.exists(conversation):
            if not auto.renew_expired:
                self._containers.sandbox(conversation)  # expired: a 400, as OpenAI's auto mode answers
                return conversation
            if self._containers.get(conversation, touch=False).status is ContainerStatus.RUNNING:
                return conversation
        record = await self._containers.create(
            name=f"auto {request.id}",
            memory_limit=auto.memory_limit,
            file_ids=auto.file_ids,
            expires_after_minutes=20,
            network_policy=auto.network_policy,
        )
        return record.id


async def _chained(first: LoopEvent | None, rest: AsyncIterator[LoopEvent]) -> AsyncIterator[LoopEvent]:
    if first is None:
        return
    yield first
    async for event in rest:
        yield event
