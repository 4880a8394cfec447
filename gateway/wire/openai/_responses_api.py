"""OpenAI's Responses API with the code_interpreter tool: POST /v1/responses (full or streamed), GET, DELETE."""

from __future__ import annotations

import asyncio
import logging
import mimetypes
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from sandbox import SandboxError

from ..._errors import GatewayError, InvalidRequest, NotFound
from ..._ids import new_hex_id
from ...conversation.items import Item, UserMessage, data_url
from ...conversation.loop import CallFinished, FunctionCallMade, LoopEvent, MessageFinished
from ...conversation.model import ModelError, Sampling
from ...conversation.record import Failure, Outcome, StoredResponse
from ...conversation.session import AutoContainer, ItemReference, Session, SessionRequest, SessionService
from ...workspace.files import FileService
from ...workspace.records import NetworkPolicy
from ..http import drain, while_connected
from ._responses_input import (
    CodeInterpreterTool,
    CreateResponseRequest,
    ParsedInput,
    check_function_calls,
    parse_input,
)
from ._responses_render import ResponseBuilder, render_item, render_response, sse
from ._shared import Files, Order, Sessions

__all__ = ["router"]

T = TypeVar("T")
log = logging.getLogger("kernelgate.gateway")
WIRE = "openai"
"""How this wire format marks the responses it stores."""
router = APIRouter(prefix="/v1/responses", tags=["responses"])


@router.post("", summary="Create a model response, running code_interpreter calls in a sandbox")
async def create_response(body: CreateResponseRequest, request: Request, sessions: Sessions, files: Files) -> Any:
    tool = body.code_interpreter()
    parsed = parse_input(body.input)
    if not parsed.items and body.previous_response_id is None and body.conversation_id is None:
        msg = "Missing required parameter: 'input'."
        raise InvalidRequest(msg, "input", code="missing_required_parameter")
    session_request = SessionRequest(
        id=new_hex_id("resp_", 48),
        model=body.model,
        items=_with_image_files(parsed, files),
        container=_container(tool) if tool is not None else None,
        previous=body.previous_response_id,
        file_ids=parsed.file_ids,
        files=parsed.files,
        instructions=body.instructions,
        max_tool_calls=body.max_tool_calls,
        functions=body.functions(),
        max_output_tokens=body.max_output_tokens,
        sampling=Sampling(temperature=body.temperature, top_p=body.top_p),
        tool_choice=body.choice(),
        output_format=body.output_format(),
        background=body.background is True,
        conversation=body.conversation_id,
    )
    body.wants_outputs()  # refuses an unknown include before anything runs
    if body.background and not body.keep:
        msg = "Background responses must be stored: send store=true (the default) with background=true."
        raise InvalidRequest(msg, "background")
    session = await sessions.start(session_request, check_function_calls)
    finish = _Finisher(session, body.echo(), body.keep)
    if body.background:
        return await _detached(request, sessions, session, finish, stream=body.stream is True)
    # Until the model's first event nothing has been said: an upstream failure is then an HTTP error
    # (ModelError's handler), which the client's SDK retries as it would OpenAI's.
    events = await while_connected(request, session.opened())
    if body.stream:
        builder = ResponseBuilder(session.id, session.created_at, finish.parameters)
        return StreamingResponse(_stream(builder, events, finish), media_type="text/event-stream")
    try:
        await while_connected(request, drain(events))
    except ModelError as exc:
        return JSONResponse(render_response(finish(_failure(exc, session.id))))
    return JSONResponse(render_response(finish()))


def _stored(sessions: SessionService, response_id: str) -> StoredResponse:
    """A response this door stored; 404 in OpenAI's words for any other id."""
    stored = sessions.stored(response_id)
    if stored is None or stored.wire != WIRE:
        raise _unknown(response_id)
    return stored


def _unknown(response_id: str) -> NotFound:
    return NotFound(
        response_id, kind="Response", param="response_id", message=f"Response with id '{response_id}' not found."
    )


def _with_image_files(parsed: ParsedInput, files: FileService) -> list[Item | ItemReference]:
    """The input's items, each uploaded image (`file:<id>`) as its data URL."""
    if not parsed.image_file_ids:
        return parsed.items
    urls = {}
    for where, file_id in parsed.image_file_ids:
        record = files.get(file_id, f"{where}.file_id")
        media_type = mimetypes.guess_type(record.filename)[0] or "image/png"
        urls[f"file:{file_id}"] = data_url(media_type, files.path(record).read_bytes())
    return [
        item.model_copy(update={"images": tuple(urls.get(url, url) for url in item.images)})
        if isinstance(item, UserMessage)
        else item
        for item in parsed.items
    ]


def _container(tool: CodeInterpreterTool) -> str | AutoContainer:
    if isinstance(tool.container, str):
        return tool.container
    auto, policy = tool.container, tool.container.network_policy
    return AutoContainer(
        memory_limit=auto.memory_limit or "1g",
        file_ids=auto.file_ids,
        network_policy=NetworkPolicy(type=policy.type, allowed_domains=tuple(policy.allowed_domains or ()))
        if policy
        else NetworkPolicy(),
    )


@router.get("/{response_id}", summary="Retrieve a stored response; a background one may be streamed")
async def retrieve_response(
    response_id: str,
    request: Request,
    sessions: Sessions,
    stream: bool = False,
    starting_after: Annotated[int | None, Query(ge=-1)] = None,
) -> Any:
    """With `stream=true`, a background response's events after `starting_after` (a sequence number),
    then live ones until it ends: a client that lost its stream resumes where it stopped."""
    stored = _stored(sessions, response_id)
    if not stream:
        return JSONResponse(render_response(stored))
    if not stored.background:
        msg = "Only responses created with background=true can be streamed with GET; this one was not."
        raise InvalidRequest(msg, "stream")
    after = -1 if starting_after is None else starting_after
    log_of = _EventLogs.of(request).get(response_id)
    if log_of is not None:
        return StreamingResponse(_sse(log_of.read(after)), media_type="text/event-stream")
    # Its live events are gone (a restart, or it ended long ago): the finished response, item by item.
    builder = ResponseBuilder(stored.id, stored.created_at, stored.parameters)
    replay = [event for event in builder.replay(stored) if event["sequence_number"] > after]
    return StreamingResponse(_sse(_each(replay)), media_type="text/event-stream")


@router.get("/{response_id}/input_items", summary="The input items of a stored response")
async def list_input_items(
    response_id: str,
    sessions: Sessions,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Order = "desc",
    include: Annotated[list[str] | None, Query()] = None,
) -> JSONResponse:
    """The items the request itself sent (a follow-up's earlier turns are its previous response's)."""
    stored = _stored(sessions, response_id)
    with_outputs = "code_interpreter_call.outputs" in (include or ())
    items = [render_item(item, with_outputs) for item in stored.input]
    if order == "desc":
        items.reverse()
    if after is not None:
        ids = [item.get("id") for item in items]
        if after not in ids:
            msg = f"No input item {after!r} to list after."
            raise InvalidRequest(msg, "after")
        items = items[ids.index(after) + 1 :]
    page = items[:limit]
    listed = {
        "object": "list",
        "data": page,
        "first_id": page[0].get("id") if page else None,
        "last_id": page[-1].get("id") if page else None,
        "has_more": len(items) > limit,
    }
    return JSONResponse(listed)


@router.post("/{response_id}/cancel", summary="Cancel a background response")
async def cancel_response(response_id: str, sessions: Sessions) -> JSONResponse:
    """Stops a background response that still runs (interrupting its code); one that ended is returned as it is."""
    stored = _stored(sessions, response_id)
    if not stored.background:
        msg = "Only responses created with background=true can be cancelled."
        raise InvalidRequest(msg, "response_id")
    await sessions.cancel(response_id)
    return JSONResponse(render_response(_stored(sessions, response_id)))


@router.delete("/{response_id}", summary="Delete a stored response")
async def delete_response(response_id: str, sessions: Sessions) -> JSONResponse:
    if not sessions.delete(response_id):
        raise _unknown(response_id)
    return JSONResponse({"id": response_id, "object": "response", "deleted": True})


def _failure(exc: Exception, response_id: str) -> Failure:
    """A failure after output began, in OpenAI's error codes (an upstream's status is in the message)."""
    if isinstance(exc, ModelError):
        return Failure(code="rate_limit_exceeded" if exc.status == 429 else "server_error", message=str(exc))
    if isinstance(exc, GatewayError | SandboxError):
        return Failure(code="server_error", message=str(exc))
    log.error("Response %s failed", response_id, exc_info=exc)
    return Failure(code="server_error", message=f"The server had an error while processing your request: {exc}")


class _Finisher:
    """Ends the session: the response as it finished, kept (when the request asked) for GET and follow-ups."""

    def __init__(self, session: Session, parameters: dict[str, Any], keep: bool) -> None:
        self.parameters = parameters
        self._session, self._keep = session, keep

    def __call__(self, failure: Failure | None = None, status: Outcome | None = None) -> StoredResponse:
        return self._session.finish(WIRE, self.parameters, failure, keep=self._keep, status=status)

    def progress(self) -> StoredResponse:
        """Keep the response as it stands (a background response, polled while it runs)."""
        return self(status=Outcome.IN_PROGRESS)


class _EventLog:
    """A background response's wire events as they happen (event i has sequence_number i), for any
    number of readers, each from its own starting point to the end."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.ended = False
        self._changed = asyncio.Event()

    def add(self, events: Iterable[dict[str, Any]]) -> None:
        self.events.extend(events)
        self._wake()

    def end(self) -> None:
        self.ended = True
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def read(self, after: int) -> AsyncIterator[dict[str, Any]]:
        index = after + 1
        while True:
            changed = self._changed
            while index < len(self.events):
                yield self.events[index]
                index += 1
            if self.ended:
                return
            await changed.wait()


class _EventLogs:
    """The app's event logs of background responses: every running one, and the latest that ended."""

    KEPT = 8
    """Logs of ended responses kept; an older one is replayed from its stored response instead."""

    def __init__(self) -> None:
        self._logs: OrderedDict[str, _EventLog] = OrderedDict()

    @classmethod
    def of(cls, request: Request) -> _EventLogs:
        state = request.app.state
        if not hasattr(state, "openai_event_logs"):
            state.openai_event_logs = cls()
        logs: _EventLogs = state.openai_event_logs
        return logs

    def open(self, response_id: str) -> _EventLog:
        self._logs[response_id] = log_of = _EventLog()
        ended = [key for key, kept in self._logs.items() if kept.ended]
        for key in ended[: max(0, len(ended) - self.KEPT)]:
            del self._logs[key]
        return log_of

    def get(self, response_id: str) -> _EventLog | None:
        return self._logs.get(response_id)


async def _detached(
    request: Request, sessions: SessionService, session: Session, finish: _Finisher, stream: bool
) -> Any:
    """A background response: it runs apart from this request (which may stream it, and may go away, and
    any request may stream it again with GET: its events are logged as they happen)."""
    started = finish.progress()
    events = _EventLogs.of(request).open(session.id)
    builder = ResponseBuilder(session.id, session.created_at, finish.parameters)
    events.add(builder.opening())
    sessions.detach(session, _run_detached(session, finish, builder, events))
    if not stream:
        return JSONResponse(render_response(started))
    return StreamingResponse(_sse(events.read(-1)), media_type="text/event-stream")


async def _run_detached(session: Session, finish: _Finisher, builder: ResponseBuilder, events: _EventLog) -> None:
    failure, status = None, None
    try:
        async for event in session.events:
            events.add(builder.on(event))
            if isinstance(event, CallFinished | MessageFinished | FunctionCallMade):
                finish.progress()
    except asyncio.CancelledError:
        status = Outcome.CANCELLED
    except Exception as exc:  # noqa: BLE001  # every failure ends the response; _failure logs the unexpected
        failure = _failure(exc, session.id)
    events.add([builder.closing(finish(failure, status))])
    events.end()


async def _sse(events: AsyncIterator[dict[str, Any]]) -> AsyncIterator[str]:
    async for event in events:
        yield sse(event)


async def _each(events: list[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    for event in events:
        yield event


async def _stream(builder: ResponseBuilder, events: AsyncIterator[LoopEvent], finish: _Finisher) -> AsyncIterator[str]:
    for event in builder.opening():
        yield sse(event)
    failure: Failure | None = None
    try:
        async for loop_event in events:
            for event in builder.on(loop_event):
                yield sse(event)
    except Exception as exc:  # noqa: BLE001  # every failure ends the response; _failure logs the unexpected
        failure = _failure(exc, builder.id)
    yield sse(builder.closing(finish(failure)))
