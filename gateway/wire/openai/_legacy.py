"""Responses kernelgate 0.1 stored as OpenAI bodies, moved into the neutral record on first start."""

from __future__ import annotations

import json

from pydantic import TypeAdapter

from ...conversation.items import Item
from ...conversation.record import Failure, Outcome, StoredResponse
from ...workspace.records import LegacyResponseRecord, ResponseRecord
from ...workspace.store import Store

__all__ = ["upgrade_store"]

_ITEMS = TypeAdapter(list[Item])
_RENDERED = {"id", "object", "created_at", "status", "completed_at", "error", "incomplete_details", "output", "usage"}


def upgrade_store(store: Store) -> None:
    store.upgrade_responses(_convert)


def _convert(old: LegacyResponseRecord) -> ResponseRecord:
    body = json.loads(old.body)
    items = _ITEMS.validate_json(old.items)
    produced = {output.get("id") for output in body.get("output") or ()}
    split = len(items)
    while split and getattr(items[split - 1], "id", None) in produced:
        split -= 1
    usage = body.get("usage") or {}
    stored = StoredResponse(
        id=old.id,
        wire="openai",
        model=body["model"],
        created_at=old.created_at,
        completed_at=body.get("completed_at") or old.created_at,
        status=Outcome(body["status"]),
        incomplete_reason=(body.get("incomplete_details") or {}).get("reason"),
        error=Failure.model_validate(body["error"]) if body.get("error") else None,
        input_tokens=usage.get("input_tokens", 0),
        output_tokens=usage.get("output_tokens", 0),
        container_id=old.container_id or "",
        history=tuple(items[:split]),
        output=tuple(items[split:]),
        parameters={key: value for key, value in body.items() if key not in _RENDERED},
    )
    return ResponseRecord(id=old.id, created_at=old.created_at, data=stored.model_dump_json())
