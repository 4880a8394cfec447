"""Conversations kept by the gateway: items a response continues from and adds to, in no wire format.

A response that names a conversation sees its items as the history, and its own input and output are
appended when it ends. Items are kept in the core's terms (`items.Item`), each with an id.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from pydantic import TypeAdapter

from .._errors import InvalidRequest, NotFound
from .._ids import new_hex_id
from ..workspace.records import ConversationItemRecord, ConversationRecord, Page
from ..workspace.store import Order, Store
from .items import Item

__all__ = ["ConversationService"]

_ITEM: TypeAdapter[Item] = TypeAdapter(Item)


def with_id(item: Item) -> Item:
    """The item with an id of its own (messages and outputs a client sent without one get one here)."""
    if getattr(item, "id", None):
        return item
    return item.model_copy(update={"id": new_hex_id("msg_" if item.type in ("user", "system") else "item_", 48)})


class ConversationService:
    def __init__(self, store: Store) -> None:
        self._store = store

    def create(self, items: Sequence[Item], metadata: Mapping[str, str]) -> ConversationRecord:
        record = ConversationRecord(id=new_hex_id("conv_", 48), created_at=int(time.time()), metadata=dict(metadata))
        self._store.add_conversation(record)
        self.add(record.id, items)
        return record

    def get(self, conversation_id: str, param: str = "conversation_id") -> ConversationRecord:
        record = self._store.get_conversation(conversation_id)
        if record is None:
            msg = f"Conversation with id '{conversation_id}' not found."
            raise NotFound(conversation_id, kind="Conversation", param=param, message=msg)
        return record

    def update(self, conversation_id: str, metadata: Mapping[str, str]) -> ConversationRecord:
        self.get(conversation_id)
        self._store.set_conversation_metadata(conversation_id, dict(metadata))
        return self.get(conversation_id)

    def delete(self, conversation_id: str) -> None:
        self.get(conversation_id)
        self._store.delete_conversation(conversation_id)

    def add(self, conversation_id: str, items: Sequence[Item]) -> list[Item]:
        """Append items (oldest first), each given an id if it has none; the items as kept."""
        self.get(conversation_id)
        kept = [with_id(item) for item in items]
        now = int(time.time())
        records = [
            ConversationItemRecord(
                id=str(getattr(item, "id", "")),
                conversation_id=conversation_id,
                created_at=now,
                data=_ITEM.dump_json(item).decode(),
            )
            for item in kept
        ]
        self._store.add_conversation_items(records)
        return kept

    def history(self, conversation_id: str) -> list[Item]:
        """Every item, oldest first: what a response in the conversation continues from."""
        self.get(conversation_id, "conversation")
        return [_ITEM.validate_json(record.data) for record in self._store.conversation_items(conversation_id)]

    def items(self, conversation_id: str, after: str | None, limit: int, order: Order) -> Page[Item]:
        self.get(conversation_id)
        if after is not None and self._store.get_conversation_item(conversation_id, after) is None:
            msg = f"No conversation item {after!r} to list after."
            raise InvalidRequest(msg, "after")
        page = self._store.list_conversation_items(conversation_id, after, limit, order)
        return Page[Item](items=tuple(_ITEM.validate_json(r.data) for r in page.items), has_more=page.has_more)

    def item(self, conversation_id: str, item_id: str) -> Item:
        self.get(conversation_id)
        record = self._store.get_conversation_item(conversation_id, item_id)
        if record is None:
            msg = f"Item with id '{item_id}' not found."
            raise NotFound(item_id, kind="Item", param="item_id", message=msg)
        return _ITEM.validate_json(record.data)

    def delete_item(self, conversation_id: str, item_id: str) -> ConversationRecord:
        self.item(conversation_id, item_id)
        self._store.delete_conversation_item(conversation_id, item_id)
        return self.get(conversation_id)
