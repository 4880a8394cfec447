"""OpenAI's Responses API with the code_interpreter tool: POST /v1/responses (full or streamed), GET, DELETE."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import TypeAdapter

from sandbox import SandboxError

from ..._errors import GatewayError, InvalidRequest, NotFound
from ..._ids import new_hex_id
from ...conversation.items import CodeCall, Item
from ...conversation.loop import LoopEvent
from ...conversation.model import Model, ModelError, Sampling
from ...upstreams.router import ModelRouter
from ...workspace.containers import ContainerService
from ...workspace.records import NetworkPolicy, ResponseRecord
from ...workspace.store import Store
from ._responses_input import CodeInterpreterTool, CreateResponseRequest, check_function_calls, parse_input
from ._responses_render import ResponseBuilder, sse
from ._shared import Containers, Loop, Responses

__all__ = ["router"]

log = logging.getLogger("kernelgate.gateway")
router = APIRouter(prefix="/v1/responses", tags=["responses"])
_ITEMS = TypeAdapter(list[Item])


async def _model(request: Request, name: str) -> Model:
    router: ModelRouter = request.app.state.models
    return await router.model(name)


@router.post("", summary="Create a model response, running code_interpreter calls in a sandbox")
async def create_response(
    body: CreateResponseRequest, request: Request, containers: Containers, store: Responses, loop: Loop
) -> Any:
    model = await _model(request, body.model)
    with_outputs = body.wants_outputs()
    tool = body.code_interpreter()
    parsed = parse_input(body.input)
    history, reuse = _history(store, body.previous_response_id)
    items = [*history, *parsed.items]
    check_function_calls(items)
    if tool is None:
        msg = "kernelgate runs models with the code_interpreter tool: add it to tools."
        raise InvalidRequest(msg, "tools")
    response_id = new_hex_id("resp_", 48)
    container_id = await _container(containers, tool, items, reuse, response_id)
    for file_id in parsed.file_ids:
        await containers.add_file_id(container_id, file_id)
    instructions = "\n\n".join(text for text in (body.instructions, *parsed.instructions) if text) or None
    builder = ResponseBuilder(response_id, body.model_dump(), with_outputs)
    events = loop.run(
        model,
        instructions,
        items,
        container_id,
        max_iterations=body.max_tool_calls,
        functions=body.functions(),
        max_output_tokens=body.max_output_tokens,
        sampling=Sampling(temperature=body.temperature, top_p=body.top_p),
    )
    finish = _Finisher(store, builder, items, container_id, body.store)
    if body.stream:
        return StreamingResponse(_stream(builder, events, finish), media_type="text/event-stream")
    try:
        await _while_connected(request, _drain(builder, events))
    except ModelError as exc:
        builder.failed(_model_error_code(exc), str(exc))
        return JSONResponse(finish())
    builder.completed()
    return JSONResponse(finish())


@router.get("/{response_id}", summary="Retrieve a stored response")
async def retrieve_response(response_id: str, store: Responses) -> JSONResponse:
    record = store.get_response(response_id)
    if record is None:
        raise NotFound(response_id, kind="Response", param="response_id")
    return JSONResponse(json.loads(record.body))


@router.delete("/{response_id}", summary="Delete a stored response")
async def delete_response(response_id: str, store: Responses) -> JSONResponse:
    if not store.delete_response(response_id):
        raise NotFound(response_id, kind="Response", param="response_id")
    return JSONResponse({"id": response_id, "object": "response", "deleted": True})


async def _drain(builder: ResponseBuilder, events: AsyncIterator[LoopEvent]) -> None:
    async for event in events:
        for _ in builder.on(event):
            pass


async def _while_connected(request: Request, work: Coroutine[Any, Any, None]) -> None:
    """Do the work, cancelling it (and so interrupting the code it runs) if the client goes away."""
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not task.done():
            task.cancel()
    await task  # re-raises its error, or CancelledError when the client left


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _model_error_code(exc: ModelError) -> str:
    if exc.code:
        return exc.code
    return f"upstream_{exc.status}" if exc.status else "upstream_error"


def _history(store: Store, previous_response_id: str | None) -> tuple[list[Item], str | None]:
    """The conversation a follow-up continues, and the container it used."""
    if previous_response_id is None:
        return [], None
    record = store.get_response(previous_response_id)
    if record is None:
        msg = f"Previous response with id '{previous_response_id}' not found."
        raise InvalidRequest(msg, "previous_response_id", code="previous_response_not_found")
    return _ITEMS.validate_json(record.items), record.container_id


async def _container(
    containers: ContainerService, tool: CodeInterpreterTool, items: list[Item], reuse: str | None, response_id: str
) -> str:
    """The container the calls run in: the one named, or (auto) the conversation's while it lives, or a new one."""
    if isinstance(tool.container, str):
        containers.sandbox(tool.container)  # 404 unknown, 400 expired
        return tool.container
    earlier = [item.container_id for item in reversed(items) if isinstance(item, CodeCall)]
    for candidate in ([reuse] if reuse else []) + earlier:
        if containers.is_running(candidate):
            return candidate
    auto = tool.container
    policy = auto.network_policy
    record = await containers.create(
        name=f"auto {response_id}",
        memory_limit=auto.memory_limit or "1g",
        file_ids=auto.file_ids,
        expires_after_minutes=20,
        network_policy=NetworkPolicy(type=policy.type, allowed_domains=tuple(policy.allowed_domains or ()))
        if policy
        else NetworkPolicy(),
    )
    return record.id


class _Finisher:
    """Completes a response: stores it (when asked) with the items a follow-up continues from."""

    def __init__(
        self, store: Store, builder: ResponseBuilder, items: list[Item], container_id: str, keep: bool
    ) -> None:
        self._store, self._builder, self._items = store, builder, items
        self._container_id, self._keep = container_id, keep

    def __call__(self) -> dict[str, Any]:
        body = self._builder.response()
        if self._keep:
            record = ResponseRecord(
                id=body["id"],
                created_at=body["created_at"],
                body=json.dumps(body),
                items=_ITEMS.dump_json([*self._items, *self._builder.items]).decode(),
                container_id=self._container_id,
            )
            self._store.add_response(record)
        return body


async def _stream(builder: ResponseBuilder, events: AsyncIterator[LoopEvent], finish: _Finisher) -> AsyncIterator[str]:
    for event in builder.opening():
        yield sse(event)
    try:
        async for loop_event in events:
            for event in builder.on(loop_event):
                yield sse(event)
    except ModelError as exc:
        failed = builder.failed(_model_error_code(exc), str(exc))
        finish()
        yield sse({**failed, "response": builder.response()})
        return
    except (GatewayError, SandboxError) as exc:
        yield sse(builder.failed("server_error", str(exc)))
        return
    except Exception as exc:
        log.exception("Response %s failed mid-stream", builder.id)
        yield sse(builder.failed("server_error", f"The server had an error while processing your request: {exc}"))
        return
    completed = builder.completed()
    finish()
    yield sse({**completed, "response": builder.response()})
