"""OpenAI's Conversations API: /v1/conversations and its items, kept in the gateway's store.

Items come in as Responses input items (the same parsing) and go out as the Responses API renders them.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from ..._errors import InvalidRequest
from ...conversation.items import Item
from ...conversation.session import ItemReference
from ...workspace.records import ConversationRecord
from ._responses_input import InputItem, parse_input
from ._responses_render import render_item
from ._shared import Conversations, Order

__all__ = ["router"]

router = APIRouter(prefix="/v1/conversations", tags=["conversations"])

Limit = Annotated[int, Query(ge=1, le=100)]
Include = Annotated[list[str] | None, Query()]


class CreateConversation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[InputItem] | None = Field(default=None, max_length=20)
    metadata: dict[str, str] | None = None


class UpdateConversation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metadata: dict[str, str]


class AddItems(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[InputItem] = Field(max_length=20)


def _conversation(record: ConversationRecord) -> dict[str, Any]:
    return {"id": record.id, "object": "conversation", "created_at": record.created_at, "metadata": record.metadata}


def _items(raw: list[Any] | None) -> list[Item]:
    """Input items as the core keeps them; files and references belong to responses, not here."""
    parsed = parse_input(raw or [])
    if parsed.file_ids or parsed.files or parsed.image_file_ids:
        msg = "kernelgate keeps files out of conversation items: send them with a response's input."
        raise InvalidRequest(msg, "items")
    if any(isinstance(item, ItemReference) for item in parsed.items):
        msg = "item_reference items cannot be added to a conversation."
        raise InvalidRequest(msg, "items")
    return [item for item in parsed.items if not isinstance(item, ItemReference)]


def _list(items: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {
        "object": "list",
        "data": items,
        "first_id": items[0]["id"] if items else None,
        "last_id": items[-1]["id"] if items else None,
        "has_more": has_more,
    }


def _outputs(include: list[str] | None) -> bool:
    return "code_interpreter_call.outputs" in (include or ())


@router.post("", summary="Create a conversation")
async def create_conversation(body: CreateConversation, conversations: Conversations) -> JSONResponse:
    record = conversations.create(_items(body.items), body.metadata or {})
    return JSONResponse(_conversation(record))


@router.get("/{conversation_id}", summary="Retrieve a conversation")
async def retrieve_conversation(conversation_id: str, conversations: Conversations) -> JSONResponse:
    return JSONResponse(_conversation(conversations.get(conversation_id)))


@router.post("/{conversation_id}", summary="Update a conversation's metadata")
async def update_conversation(
    conversation_id: str, body: UpdateConversation, conversations: Conversations
) -> JSONResponse:
    return JSONResponse(_conversation(conversations.update(conversation_id, body.metadata)))


@router.delete("/{conversation_id}", summary="Delete a conversation and its items")
async def delete_conversation(conversation_id: str, conversations: Conversations) -> JSONResponse:
    conversations.delete(conversation_id)
    return JSONResponse({"id": conversation_id, "object": "conversation.deleted", "deleted": True})


@router.post("/{conversation_id}/items", summary="Add items to a conversation")
async def add_items(
    conversation_id: str, body: AddItems, conversations: Conversations, include: Include = None
) -> JSONResponse:
    added = conversations.add(conversation_id, _items(body.items))
    return JSONResponse(_list([render_item(item, _outputs(include)) for item in added], False))


@router.get("/{conversation_id}/items", summary="List a conversation's items")
async def list_items(
    conversation_id: str,
    conversations: Conversations,
    after: str | None = None,
    limit: Limit = 20,
    order: Order = "desc",
    include: Include = None,
) -> JSONResponse:
    page = conversations.items(conversation_id, after, limit, order)
    return JSONResponse(_list([render_item(item, _outputs(include)) for item in page.items], page.has_more))


@router.get("/{conversation_id}/items/{item_id}", summary="Retrieve a conversation item")
async def retrieve_item(
    conversation_id: str, item_id: str, conversations: Conversations, include: Include = None
) -> JSONResponse:
    return JSONResponse(render_item(conversations.item(conversation_id, item_id), _outputs(include)))


@router.delete("/{conversation_id}/items/{item_id}", summary="Delete a conversation item")
async def delete_item(conversation_id: str, item_id: str, conversations: Conversations) -> JSONResponse:
    return JSONResponse(_conversation(conversations.delete_item(conversation_id, item_id)))
