"""Ids in OpenAI's forms: the first 8 hex digits of hex ids are the Unix creation time, as observed."""

from __future__ import annotations

import secrets
import string
import time

__all__ = ["new_container_file_id", "new_container_id", "new_file_id", "new_hex_id"]

_BASE62 = string.digits + string.ascii_letters


def new_hex_id(prefix: str, digits: int, created_at: int | None = None) -> str:
    stamp = f"{int(time.time()) if created_at is None else created_at:08x}"
    return prefix + stamp + secrets.token_hex((digits - len(stamp) + 1) // 2)[: digits - len(stamp)]


def new_container_id(created_at: int) -> str:
    return new_hex_id("cntr_", 48, created_at)


def new_container_file_id() -> str:
    return new_hex_id("cfile_", 32)


def new_file_id() -> str:
    return "file-" + "".join(secrets.choice(_BASE62) for _ in range(22))
