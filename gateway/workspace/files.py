"""Uploaded files (OpenAI's Files API): metadata in the store, bytes under `<data dir>/files/<id>`."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
import unicodedata
from pathlib import Path
from typing import BinaryIO

from .._errors import CursorNotFound, InvalidRequest, NotFound
from .._ids import new_file_id
from .records import FileRecord, Page
from .store import Order, Store

__all__ = ["FileService", "clean_filename"]

_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]+")


def clean_filename(name: str | None) -> str:
    """A file name safe to use as the last component of a path: no separators, controls or dots-only."""
    base = unicodedata.normalize("NFC", name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = _UNSAFE.sub("_", base).strip().lstrip(".")
    return base[:200] or "file"


class FileService:
    def __init__(self, store: Store, root: Path) -> None:
        self._store = store
        self._root = root
        root.mkdir(parents=True, exist_ok=True, mode=0o700)

    def create(self, filename: str | None, purpose: str, source: BinaryIO, expires_after: int | None) -> FileRecord:
        file_id = new_file_id()
        target = self._root / file_id
        with target.open("xb") as sink:
            shutil.copyfileobj(source, sink, 1024 * 1024)
            size = sink.tell()
        now = int(time.time())
        record = FileRecord(
            id=file_id,
            filename=clean_filename(filename),
            bytes=size,
            purpose=purpose,
            created_at=now,
            expires_at=now + expires_after if expires_after is not None else None,
        )
        try:
            self._store.add_file(record)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return record

    def get(self, file_id: str, param: str = "id") -> FileRecord:
        self._purge_expired()
        record = self._store.get_file(file_id)
        if record is None:
            raise NotFound(file_id, kind="File", param=param)
        return record

    def path(self, record: FileRecord) -> Path:
        return self._root / record.id

    def list_files(self, after: str | None, limit: int, order: Order, purpose: str | None) -> Page[FileRecord]:
        self._purge_expired()
        try:
            return self._store.list_files(after, limit, order, purpose)
        except CursorNotFound as exc:
            msg = f"No file {exc.args[0]!r} to list after."
            raise InvalidRequest(msg, "after") from exc

    def delete(self, file_id: str) -> None:
        record = self.get(file_id)
        self._store.delete_file(record.id)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(record))

    def _purge_expired(self) -> None:
        for record in self._store.expired_files(int(time.time())):
            self._store.delete_file(record.id)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path(record))
