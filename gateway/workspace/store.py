"""Metadata in SQLite under the data directory: files, containers, container files.

Calls are synchronous: each is one indexed statement of well under a millisecond (WAL mode), so the
event loop is not held up; blobs live on disk beside the database, never in it. What grows with the
files a sandbox's code made (`update_container_files`) is one transaction, called from a thread.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

from .._errors import CursorNotFound
from .records import (
    ContainerFileRecord,
    ContainerRecord,
    ContainerStatus,
    ConversationItemRecord,
    ConversationRecord,
    FileRecord,
    LegacyResponseRecord,
    NetworkPolicy,
    Page,
    ResponseRecord,
)

__all__ = ["STORE_FILE", "Order", "Store", "container_names"]

STORE_FILE = "kernelgate.db"
"""The store's file in the gateway's data directory."""
Order = Literal["asc", "desc"]
R = TypeVar("R")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    id TEXT PRIMARY KEY, filename TEXT NOT NULL, bytes INTEGER NOT NULL, purpose TEXT NOT NULL,
    created_at INTEGER NOT NULL, expires_at INTEGER
);
CREATE TABLE IF NOT EXISTS containers (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at INTEGER NOT NULL, last_active_at INTEGER NOT NULL,
    expires_after_minutes INTEGER NOT NULL, memory_limit TEXT NOT NULL, network_policy TEXT NOT NULL,
    status TEXT NOT NULL, sandbox_id TEXT
);
CREATE TABLE IF NOT EXISTS container_files (
    id TEXT PRIMARY KEY, container_id TEXT NOT NULL, path TEXT NOT NULL, source TEXT NOT NULL,
    bytes INTEGER NOT NULL, created_at INTEGER NOT NULL, UNIQUE (container_id, path)
);
CREATE TABLE IF NOT EXISTS stored_responses (
    id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, data TEXT NOT NULL, in_progress INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, metadata TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS conversation_items (
    id TEXT NOT NULL, conversation_id TEXT NOT NULL, created_at INTEGER NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (conversation_id, id)
);
CREATE TABLE IF NOT EXISTS response_items (
    item_id TEXT PRIMARY KEY, response_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS container_uploads (
    container_id TEXT NOT NULL, file_id TEXT NOT NULL, container_file_id TEXT NOT NULL,
    PRIMARY KEY (container_id, file_id)
);
CREATE INDEX IF NOT EXISTS files_order ON files (created_at);
CREATE INDEX IF NOT EXISTS containers_order ON containers (created_at);
CREATE INDEX IF NOT EXISTS container_files_order ON container_files (container_id, created_at);
CREATE INDEX IF NOT EXISTS stored_responses_running ON stored_responses (id) WHERE in_progress;
CREATE INDEX IF NOT EXISTS response_items_by_response ON response_items (response_id);
CREATE INDEX IF NOT EXISTS conversation_items_order ON conversation_items (conversation_id, created_at);
"""


def container_names(path: Path) -> dict[str, str]:
    """Every container's name by id, read-only: for an operator's command beside a running gateway, which
    must neither create nor upgrade the store (empty when there is none, or it cannot be read)."""
    if not path.exists():
        return {}
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as db:
            return dict(db.execute("SELECT id, name FROM containers").fetchall())
    except sqlite3.Error:
        return {}


class Store:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """The statements in the block apply together or not at all."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _run(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def _page(
        self,
        table: str,
        where: str,
        params: Sequence[Any],
        after: str | None,
        limit: int,
        order: Order,
        to_record: Callable[[sqlite3.Row], R],
    ) -> Page[R]:
        """Rows by creation (then insertion) order; `after` is the id of the last row of the previous page."""
        direction, compare = ("ASC", ">") if order == "asc" else ("DESC", "<")
        conditions, values = [where], list(params)
        if after is not None:
            cursor = self._run(f"SELECT created_at, rowid FROM {table} WHERE id = ? AND {where}", [after, *params])
            if not cursor:
                raise CursorNotFound(after)
            conditions.append(f"(created_at, rowid) {compare} (?, ?)")
            values += [cursor[0]["created_at"], cursor[0]["rowid"]]
        rows = self._run(
            f"SELECT * FROM {table} WHERE {' AND '.join(conditions)} "
            f"ORDER BY created_at {direction}, rowid {direction} LIMIT ?",
            [*values, limit + 1],
        )
        return Page[R](items=tuple(to_record(row) for row in rows[:limit]), has_more=len(rows) > limit)

    # -- files ------------------------------------------------------------------------------------

    def add_file(self, record: FileRecord) -> None:
        self._run(
            "INSERT INTO files VALUES (?, ?, ?, ?, ?, ?)",
            [record.id, record.filename, record.bytes, record.purpose, record.created_at, record.expires_at],
        )

    def get_file(self, file_id: str) -> FileRecord | None:
        rows = self._run("SELECT * FROM files WHERE id = ?", [file_id])
        return _file(rows[0]) if rows else None

    def list_files(self, after: str | None, limit: int, order: Order, purpose: str | None) -> Page[FileRecord]:
        where, params = ("purpose = ?", [purpose]) if purpose else ("1", [])
        return self._page("files", where, params, after, limit, order, _file)

    def delete_file(self, file_id: str) -> None:
        self._run("DELETE FROM files WHERE id = ?", [file_id])

    def expired_files(self, now: int) -> list[FileRecord]:
        return [_file(r) for r in self._run("SELECT * FROM files WHERE expires_at <= ?", [now])]

    # -- containers -------------------------------------------------------------------------------

    def add_container(self, record: ContainerRecord) -> None:
        self._run(
            "INSERT INTO containers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                record.id,
                record.name,
                record.created_at,
                record.last_active_at,
                record.expires_after_minutes,
                record.memory_limit,
                record.network_policy.model_dump_json(),
                record.status.value,
                record.sandbox_id,
            ],
        )

    def get_container(self, container_id: str) -> ContainerRecord | None:
        rows = self._run("SELECT * FROM containers WHERE id = ?", [container_id])
        return _container(rows[0]) if rows else None

    def list_containers(self, after: str | None, limit: int, order: Order, name: str | None) -> Page[ContainerRecord]:
        where, params = ("name = ?", [name]) if name else ("1", [])
        return self._page("containers", where, params, after, limit, order, _container)

    def running_containers(self) -> list[ContainerRecord]:
        rows = self._run("SELECT * FROM containers WHERE status = ?", [ContainerStatus.RUNNING.value])
        return [_container(r) for r in rows]

    def set_container_activity(self, container_id: str, last_active_at: int) -> None:
        self._run("UPDATE containers SET last_active_at = ? WHERE id = ?", [last_active_at, container_id])

    def expire_container(self, container_id: str) -> None:
        """Mark it expired and forget its files: the metadata stays retrievable, the data is gone."""
        self._run(
            "UPDATE containers SET status = ?, sandbox_id = NULL WHERE id = ?",
            [ContainerStatus.EXPIRED.value, container_id],
        )
        self._run("DELETE FROM container_files WHERE container_id = ?", [container_id])
        self._run("DELETE FROM container_uploads WHERE container_id = ?", [container_id])

    def delete_container(self, container_id: str) -> None:
        self._run("DELETE FROM container_files WHERE container_id = ?", [container_id])
        self._run("DELETE FROM container_uploads WHERE container_id = ?", [container_id])
        self._run("DELETE FROM containers WHERE id = ?", [container_id])

    # -- container files --------------------------------------------------------------------------

    def add_container_file(self, record: ContainerFileRecord) -> None:
        self.update_container_files((), (), [record])

    def update_container_files(
        self, removed: Sequence[str], resized: Sequence[tuple[str, int]], added: Sequence[ContainerFileRecord]
    ) -> None:
        """Delete, resize (id, bytes) and add container files in one transaction."""
        with self._transaction() as db:
            db.executemany("DELETE FROM container_files WHERE id = ?", [(i,) for i in removed])
            db.executemany("UPDATE container_files SET bytes = ? WHERE id = ?", [(b, i) for i, b in resized])
            db.executemany(
                "INSERT OR REPLACE INTO container_files VALUES (?, ?, ?, ?, ?, ?)",
                [(r.id, r.container_id, r.path, r.source, r.bytes, r.created_at) for r in added],
            )

    def note_upload(self, container_id: str, file_id: str, container_file_id: str) -> None:
        """The Files API file `file_id` was copied into the container as `container_file_id`."""
        self._run(
            "INSERT OR REPLACE INTO container_uploads VALUES (?, ?, ?)", [container_id, file_id, container_file_id]
        )

    def uploaded_copy(self, container_id: str, file_id: str) -> ContainerFileRecord | None:
        """The container's copy of a Files API file, while it is still there."""
        rows = self._run(
            "SELECT container_files.* FROM container_uploads JOIN container_files"
            " ON container_files.id = container_uploads.container_file_id"
            " WHERE container_uploads.container_id = ? AND container_uploads.file_id = ?",
            [container_id, file_id],
        )
        return _container_file(rows[0]) if rows else None

    def find_container_file(self, file_id: str) -> ContainerFileRecord | None:
        rows = self._run("SELECT * FROM container_files WHERE id = ?", [file_id])
        return _container_file(rows[0]) if rows else None

    def get_container_file(self, container_id: str, file_id: str) -> ContainerFileRecord | None:
        rows = self._run("SELECT * FROM container_files WHERE container_id = ? AND id = ?", [container_id, file_id])
        return _container_file(rows[0]) if rows else None

    def container_file_sizes(self, container_id: str) -> dict[str, tuple[str, int]]:
        """Path -> (id, bytes) of every file of the container, as plain tuples (there may be very many)."""
        rows = self._run("SELECT path, id, bytes FROM container_files WHERE container_id = ?", [container_id])
        return {row["path"]: (row["id"], row["bytes"]) for row in rows}

    def container_files_at(self, container_id: str, paths: Collection[str]) -> dict[str, ContainerFileRecord]:
        """The container's files at these paths, by path."""
        found: dict[str, ContainerFileRecord] = {}
        ordered = list(paths)
        for start in range(0, len(ordered), 500):  # SQLite limits the parameters of one statement
            chunk = ordered[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            sql = f"SELECT * FROM container_files WHERE container_id = ? AND path IN ({marks})"
            found.update((row["path"], _container_file(row)) for row in self._run(sql, [container_id, *chunk]))
        return found

    def list_container_files(
        self, container_id: str, after: str | None, limit: int, order: Order
    ) -> Page[ContainerFileRecord]:
        return self._page("container_files", "container_id = ?", [container_id], after, limit, order, _container_file)

    def delete_container_file(self, file_id: str) -> None:
        self._run("DELETE FROM container_files WHERE id = ?", [file_id])

    # -- responses --------------------------------------------------------------------------------

    def add_response(self, record: ResponseRecord, item_ids: Sequence[str] = ()) -> None:
        """Keep a response, and which of its items (by id) an `item_reference` can name."""
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO stored_responses VALUES (?, ?, ?, ?)",
                [record.id, record.created_at, record.data, int(record.in_progress)],
            )
            db.executemany("INSERT OR REPLACE INTO response_items VALUES (?, ?)", [(i, record.id) for i in item_ids])

    def response_of_item(self, item_id: str) -> str | None:
        rows = self._run("SELECT response_id FROM response_items WHERE item_id = ?", [item_id])
        return str(rows[0]["response_id"]) if rows else None

    def get_response(self, response_id: str) -> ResponseRecord | None:
        rows = self._run("SELECT * FROM stored_responses WHERE id = ?", [response_id])
        return ResponseRecord(**dict(rows[0])) if rows else None

    def responses_in_progress(self) -> list[ResponseRecord]:
        return [ResponseRecord(**dict(row)) for row in self._run("SELECT * FROM stored_responses WHERE in_progress")]

    def delete_response(self, response_id: str) -> bool:
        with self._transaction() as db:
            db.execute("DELETE FROM response_items WHERE response_id = ?", [response_id])
            return db.execute("DELETE FROM stored_responses WHERE id = ?", [response_id]).rowcount > 0

    # -- conversations ----------------------------------------------------------------------------

    def add_conversation(self, record: ConversationRecord) -> None:
        self._run(
            "INSERT INTO conversations VALUES (?, ?, ?)", [record.id, record.created_at, json.dumps(record.metadata)]
        )

    def get_conversation(self, conversation_id: str) -> ConversationRecord | None:
        rows = self._run("SELECT * FROM conversations WHERE id = ?", [conversation_id])
        if not rows:
            return None
        return ConversationRecord(
            id=rows[0]["id"], created_at=rows[0]["created_at"], metadata=json.loads(rows[0]["metadata"])
        )

    def set_conversation_metadata(self, conversation_id: str, metadata: dict[str, str]) -> None:
        self._run("UPDATE conversations SET metadata = ? WHERE id = ?", [json.dumps(metadata), conversation_id])

    def delete_conversation(self, conversation_id: str) -> None:
        self._run("DELETE FROM conversation_items WHERE conversation_id = ?", [conversation_id])
        self._run("DELETE FROM conversations WHERE id = ?", [conversation_id])

    def add_conversation_items(self, records: Sequence[ConversationItemRecord]) -> None:
        with self._transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO conversation_items VALUES (?, ?, ?, ?)",
                [(r.id, r.conversation_id, r.created_at, r.data) for r in records],
            )

    def conversation_items(self, conversation_id: str) -> list[ConversationItemRecord]:
        """Every item of the conversation, oldest first."""
        rows = self._run(
            "SELECT * FROM conversation_items WHERE conversation_id = ? ORDER BY created_at, rowid", [conversation_id]
        )
        return [ConversationItemRecord(**dict(row)) for row in rows]

    def list_conversation_items(
        self, conversation_id: str, after: str | None, limit: int, order: Order
    ) -> Page[ConversationItemRecord]:
        return self._page(
            "conversation_items",
            "conversation_id = ?",
            [conversation_id],
            after,
            limit,
            order,
            lambda row: ConversationItemRecord(**dict(row)),
        )

    def get_conversation_item(self, conversation_id: str, item_id: str) -> ConversationItemRecord | None:
        rows = self._run(
            "SELECT * FROM conversation_items WHERE conversation_id = ? AND id = ?", [conversation_id, item_id]
        )
        return ConversationItemRecord(**dict(rows[0])) if rows else None

    def delete_conversation_item(self, conversation_id: str, item_id: str) -> bool:
        with self._lock:
            sql = "DELETE FROM conversation_items WHERE conversation_id = ? AND id = ?"
            return self._db.execute(sql, [conversation_id, item_id]).rowcount > 0

    def upgrade_responses(self, convert: Callable[[LegacyResponseRecord], ResponseRecord]) -> int:
        """Move the responses an older kernelgate stored (table `responses`) into today's table, in one
        transaction; how many moved."""
        with self._transaction() as db:
            if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'responses'").fetchall():
                return 0
            records = [convert(LegacyResponseRecord(**dict(row))) for row in db.execute("SELECT * FROM responses")]
            db.executemany(
                "INSERT OR IGNORE INTO stored_responses VALUES (?, ?, ?, 0)",
                [(record.id, record.created_at, record.data) for record in records],
            )
            db.execute("DROP TABLE responses")
            return len(records)


def _file(row: sqlite3.Row) -> FileRecord:
    return FileRecord(**dict(row))


def _container(row: sqlite3.Row) -> ContainerRecord:
    values = dict(row)
    values["network_policy"] = NetworkPolicy.model_validate_json(values["network_policy"])
    return ContainerRecord(**values)


def _container_file(row: sqlite3.Row) -> ContainerFileRecord:
    return ContainerFileRecord(**dict(row))
