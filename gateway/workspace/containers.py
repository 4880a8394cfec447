"""Containers (OpenAI's Containers and Container Files APIs) on top of sandboxes.

A container is one sandbox plus a record in the store. The record outlives the sandbox: once the
sandbox expires the container reads `expired`, and using it is an error.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

from sandbox import Sandbox, SandboxError, SandboxExpired, SandboxFile, SandboxManager, SandboxNotFound, SandboxSpec

from .._errors import ContainerExpired, CursorNotFound, InvalidRequest, NotFound
from .._ids import new_container_file_id, new_container_id
from .._logs import bind
from .._metrics import Metrics
from .files import FileService, clean_filename
from .records import ContainerFileRecord, ContainerRecord, ContainerStatus, NetworkPolicy, Page
from .store import Order, Store

__all__ = ["CONTAINER_LABEL", "ContainerService"]

log = logging.getLogger("kernelgate.gateway")
CONTAINER_LABEL = "container_id"
"""The sandbox label that names the container a sandbox belongs to."""


class ContainerService:
    def __init__(
        self,
        manager: SandboxManager,
        store: Store,
        files: FileService,
        minute_seconds: float,
        metrics: Metrics | None = None,
    ) -> None:
        self._manager = manager
        self._metrics = metrics or Metrics()
        self._minute = minute_seconds
        self._store = store
        self._files = files

    # -- containers -------------------------------------------------------------------------------

    async def create(
        self,
        name: str,
        memory_limit: str,
        file_ids: Sequence[str],
        expires_after_minutes: int,
        network_policy: NetworkPolicy,
    ) -> ContainerRecord:
        if network_policy.type == "allowlist":
            msg = (
                "network_policy type 'allowlist' is not supported: kernelgate sandboxes have no network "
                "access, and an allowlist is not enforced yet. Use {'type': 'disabled'}."
            )
            raise InvalidRequest(msg, "network_policy")
        uploads = [self._files.get(file_id, "file_ids") for file_id in file_ids]  # all known, or nothing made
        now = int(time.time())
        container_id = new_container_id(now)
        spec = SandboxSpec(
            memory_limit=memory_limit,
            idle_timeout=expires_after_minutes * self._minute,
            labels={CONTAINER_LABEL: container_id},
        )
        started = time.perf_counter()
        sandbox = await self._manager.create(spec)
        source = "pool" if sandbox.from_pool else "cold"
        self._metrics.container_starts.labels(source).inc()
        self._metrics.container_start_seconds.labels(source).observe(time.perf_counter() - started)
        record = ContainerRecord(
            id=container_id,
            name=name,
            created_at=now,
            last_active_at=now,
            expires_after_minutes=expires_after_minutes,
            memory_limit=memory_limit,
            network_policy=network_policy,
            status=ContainerStatus.RUNNING,
            sandbox_id=sandbox.id,
        )
        try:
            self._store.add_container(record)
            for upload in uploads:
                copy = await self.add_upload(container_id, upload.filename, self._files.path(upload))
                self._store.note_upload(container_id, upload.id, copy.id)
        except BaseException:
            await self._manager.remove(sandbox.id)
            self._store.delete_container(container_id)
            raise
        return record

    def get(self, container_id: str, *, touch: bool = True) -> ContainerRecord:
        """The container's record, its status brought up to date; any retrieval counts as activity."""
        return self._current(container_id, touch)[0]

    def _current(self, container_id: str, touch: bool) -> tuple[ContainerRecord, Sandbox | None]:
        """The up-to-date record and, while it runs, its sandbox (touched if asked)."""
        record = self._store.get_container(container_id)
        if record is None:
            raise NotFound(container_id, kind="Container", param="container_id")
        bind(container_id=container_id)
        sandbox = self._live(record)
        if sandbox is None:
            return self._store.get_container(container_id) or record, None
        if touch:
            sandbox.touch()
        return self._with_activity(record, sandbox), sandbox

    def list_containers(self, after: str | None, limit: int, order: Order, name: str | None) -> Page[ContainerRecord]:
        try:
            page = self._store.list_containers(after, limit, order, name)
        except CursorNotFound as exc:
            msg = f"No container {exc.args[0]!r} to list after."
            raise InvalidRequest(msg, "after") from exc
        items = tuple(self.get(record.id, touch=False) for record in page.items)
        return Page[ContainerRecord](items=items, has_more=page.has_more)

    async def delete(self, container_id: str) -> None:
        record = self.get(container_id, touch=False)
        if record.sandbox_id is not None:
            with suppress(SandboxNotFound, SandboxExpired):
                await self._manager.remove(record.sandbox_id)
        self._store.delete_container(container_id)

    def sandbox(self, container_id: str) -> Sandbox:
        """The live sandbox of a running container; ContainerExpired once it has expired."""
        sandbox = self._current(container_id, touch=True)[1]
        if sandbox is None:
            raise ContainerExpired(container_id)
        return sandbox

    async def reconcile(self) -> None:
        """After a restart: expire records whose sandbox is gone, remove sandboxes no record owns."""
        owned = self.owned_sandboxes()
        for sandbox in self._manager.sandboxes():
            if sandbox.id not in owned:
                log.warning("Removing sandbox %s: no container owns it", sandbox.id)
                await self._manager.remove(sandbox.id)

    def owned_sandboxes(self) -> set[str]:
        """The ids of the live sandboxes a running container owns: what a restart keeps."""
        return {sandbox.id for _, sandbox in self.running()}

    def running(self) -> list[tuple[ContainerRecord, Sandbox]]:
        """The running containers with their sandboxes (no activity counted)."""
        pairs = ((record, self._live(record)) for record in self._store.running_containers())
        return [(record, sandbox) for record, sandbox in pairs if sandbox is not None]

    def expires_at(self, container_id: str) -> int | None:
        """When the running container expires if nothing uses it (Unix seconds); None once it has."""
        sandbox = self._current(container_id, touch=False)[1]
        return int(sandbox.expires_at) if sandbox is not None else None

    def find_file(self, file_id: str) -> ContainerFileRecord:
        """A container file by its id alone (the Files API of a door that names files by id)."""
        record = self._store.find_container_file(file_id)
        if record is None:
            raise NotFound(file_id, kind="File", param="file_id")
        return record

    def exists(self, container_id: str) -> bool:
        """Whether the container was ever made here (and not deleted), running or expired."""
        return self._store.get_container(container_id) is not None

    def _live(self, record: ContainerRecord) -> Sandbox | None:
        """The record's sandbox if it still runs; a vanished sandbox marks the record expired."""
        if record.status is not ContainerStatus.RUNNING or record.sandbox_id is None:
            return None
        try:
            return self._manager.get(record.sandbox_id)
        except SandboxError:
            # Expired, or gone while no gateway ran (an expired one is removed on adoption).
            self._store.expire_container(record.id)
            return None

    def _with_activity(self, record: ContainerRecord, sandbox: Sandbox) -> ContainerRecord:
        active = int(sandbox.last_active)
        if active != record.last_active_at:
            self._store.set_container_activity(record.id, active)
            record = record.model_copy(update={"last_active_at": active})
        return record

    # -- container files --------------------------------------------------------------------------

    async def add_upload(
        self, container_id: str, filename: str | None, data: bytes | Path | BinaryIO
    ) -> ContainerFileRecord:
        """Place an uploaded file at /mnt/data/<hex>-<name>, as the hosted tool does."""
        sandbox = self.sandbox(container_id)
        file_id = new_container_file_id()
        name = f"{file_id.removeprefix('cfile_')}-{clean_filename(filename)}"
        written = await sandbox.write_file(name, data)
        record = ContainerFileRecord(
            id=file_id,
            container_id=container_id,
            path=written.path,
            source="user",
            bytes=written.size,
            created_at=int(time.time()),
        )
        self._store.add_container_file(record)
        return record

    async def add_file_id(self, container_id: str, file_id: str, once: bool = False) -> ContainerFileRecord:
        """Copy a Files API file into the container; with `once`, not again while an earlier copy is there
        (a conversation that replays the same file)."""
        if once and (copy := self._store.uploaded_copy(container_id, file_id)) is not None:
            return copy
        upload = self._files.get(file_id, "file_id")
        record = await self.add_upload(container_id, upload.filename, self._files.path(upload))
        self._store.note_upload(container_id, file_id, record.id)
        return record

    async def add_data_once(self, container_id: str, filename: str, data: bytes) -> ContainerFileRecord:
        """A file sent inline: into /mnt/data unless the same file (name and bytes) is there already."""
        key = f"sha256:{hashlib.sha256(filename.encode() + b'/' + data).hexdigest()}"
        if (copy := self._store.uploaded_copy(container_id, key)) is not None:
            return copy
        record = await self.add_upload(container_id, filename, data)
        self._store.note_upload(container_id, key, record.id)
        return record

    async def list_files(
        self, container_id: str, after: str | None, limit: int, order: Order
    ) -> Page[ContainerFileRecord]:
        """A page of the container's files; the first page brings the records up to date with /mnt/data
        (the next pages continue that listing rather than scanning again)."""
        if after is None:
            await self.sync_files(container_id)
        else:
            self.sandbox(container_id)  # still running, and counts as activity
        try:
            return self._store.list_container_files(container_id, after, limit, order)
        except CursorNotFound as exc:
            msg = f"No container file {exc.args[0]!r} to list after."
            raise InvalidRequest(msg, "after") from exc

    async def get_file(self, container_id: str, file_id: str) -> ContainerFileRecord:
        await self.sync_files(container_id)
        record = self._store.get_container_file(container_id, file_id)
        if record is None:
            raise NotFound(file_id, kind="Container file", param="file_id")
        return record

    @contextmanager
    def open_file(self, record: ContainerFileRecord) -> Iterator[int]:
        """A new fd reading the file; the caller owns it once the block exits without error."""
        sandbox = self.sandbox(record.container_id)
        with sandbox.open_file(record.path) as (_, fd):
            yield os.dup(fd)

    async def delete_file(self, container_id: str, file_id: str) -> None:
        record = await self.get_file(container_id, file_id)
        await self.sandbox(container_id).delete_file(record.path)
        self._store.delete_container_file(record.id)

    async def sync_files(self, container_id: str, paths: Collection[str] = ()) -> dict[str, ContainerFileRecord]:
        """Bring the records in line with /mnt/data (files the code wrote become `assistant` files) and
        return those of `paths`.

        The code decides how many files there are, so the comparison and the writes run in a thread.
        """
        sandbox = self.sandbox(container_id)
        present = {f.path: f for f in await sandbox.list_files()}
        return await asyncio.to_thread(self._sync_files, container_id, present, paths)

    def _sync_files(
        self, container_id: str, present: dict[str, SandboxFile], paths: Collection[str]
    ) -> dict[str, ContainerFileRecord]:
        known = self._store.container_file_sizes(container_id)
        removed = [file_id for path, (file_id, _) in known.items() if path not in present]
        resized = [(i, present[p].size) for p, (i, size) in known.items() if p in present and present[p].size != size]
        added = [_assistant_file(container_id, found) for path, found in present.items() if path not in known]
        if removed or resized or added:
            self._store.update_container_files(removed, resized, added)
        return self._store.container_files_at(container_id, paths) if paths else {}


def _assistant_file(container_id: str, found: SandboxFile) -> ContainerFileRecord:
    return ContainerFileRecord(
        id=new_container_file_id(),
        container_id=container_id,
        path=found.path,
        source="assistant",
        bytes=found.size,
        created_at=int(found.modified),
    )
