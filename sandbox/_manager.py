"""The sandbox manager: creates, finds, expires and removes sandboxes, and cleans up after crashes.

Cleanup never depends on this process's memory: every container carries labels naming its data
directory and sandbox, so a new manager adopts (or removes) whatever an earlier one left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import fcntl
import json
import logging
import os
import secrets
import shutil
import time
from collections import OrderedDict
from collections.abc import Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any

from pydantic import BaseModel, ConfigDict

from ._backend import Backend, ContainerEvent, ContainerInfo, Watch
from ._config import SandboxConfig
from ._disk import available as disk_limits_unavailable
from ._errors import (
    CapacityExceeded,
    DataDirInUse,
    ManagerClosed,
    MemoryLimitTooLarge,
    SandboxError,
    SandboxExpired,
    SandboxNotFound,
)
from ._files import read_small_file
from ._labels import DATA_DIR, MANAGED_LABEL, POOLED, SANDBOX_ID, spec_from_labels
from ._models import SandboxSpec
from ._pool import Pool
from ._sandbox import CLAIM_FILE, CLAIMED, Sandbox, remove_home
from .backends.docker import DockerBackend

__all__ = ["EngineStatus", "Recovery", "SandboxManager", "labels_of"]

log = logging.getLogger("kernelgate.sandbox")
_REMEMBERED_ENDINGS = 10_000
_CLAIM_MAX = 64 * 1024


class EngineStatus(BaseModel):
    """Whether sandboxes can be made: the Docker engine and the kernel image."""

    model_config = ConfigDict(frozen=True)

    docker_version: str | None
    image: str
    image_id: str | None
    problem: str | None
    """What stands in the way, in words, or None when all is ready."""
    disk_limit: int | None = None
    """Bytes of /mnt/data each sandbox may use, or None when there is no limit (see SandboxConfig)."""
    runtime: str = "runc"
    """The Docker runtime sandboxes run under."""


class Recovery(BaseModel):
    """What a manager found of an earlier one's sandboxes when it started: kept, or removed."""

    model_config = ConfigDict(frozen=True)

    adopted: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    """Sandbox ids (a container whose labels are not a sandbox's: its container id)."""
    pool_adopted: tuple[str, ...] = ()
    pool_removed: tuple[str, ...] = ()
    """The warm pool's sandboxes, never handed out: kept for this manager's pool, or removed."""


class _State(enum.Enum):
    UNOPENED = "unopened"
    RUNNING = "running"
    CLOSED = "closed"


class SandboxManager:
    """Owns the sandboxes of one data directory. Use as `async with SandboxManager(config) as manager:`."""

    def __init__(self, config: SandboxConfig, backend: Backend | None = None) -> None:
        """`backend`: what runs the sandboxes' kernels; by default the Docker engine at config.docker_host."""
        self.config = config
        self._runtime: Backend = backend if backend is not None else DockerBackend(config.docker_host)
        self._sandboxes: dict[str, Sandbox] = {}
        self._unclaimed: dict[str, Sandbox] = {}
        """The warm pool's sandboxes, ready or being made: not listed, not counted against any cap."""
        self._pool = Pool(config, self._make_pooled, self._discard_pooled, self._runtime.available_memory, self._busy)
        self._ended: OrderedDict[str, bool] = OrderedDict()  # sandbox id -> expired?
        self._state = _State.UNOPENED
        self._watch: Watch | None = None
        self._reaper: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock_fd: int | None = None
        self._host_memory = 0
        self._limit_disk = False
        self.recovery = Recovery()
        """Filled in by start(): the earlier sandboxes of this data directory it adopted and removed."""

    async def __aenter__(self) -> SandboxManager:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect to Docker, adopt or remove what an earlier manager left, start the reaper.

        Raises DockerUnavailable when the engine cannot be reached.
        """
        if self._state is not _State.UNOPENED:
            msg = "A SandboxManager can be started once."
            raise ManagerClosed(msg)
        self._loop = asyncio.get_running_loop()
        for directory in (
            self.config.data_dir,
            self.config.run_dir,
            self.config.control_dir,
            self.config.sandboxes_dir,
        ):
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock_data_dir()
        try:
            await self._runtime.version()
            self._host_memory = (await self._runtime.host()).memory
            self._limit_disk = self._check_disk_limits()
            await self._subscribe()
            await self._recover()
        except BaseException:
            self._unlock_data_dir()
            raise
        self._state = _State.RUNNING
        self._reaper = asyncio.create_task(self._reap_forever(), name="kernelgate-reaper")
        self._pool.start()

    async def close(self, *, remove_sandboxes: bool = True) -> None:
        """Stop the reaper and remove every sandbox; with remove_sandboxes=False leave them for adoption."""
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        await self._pool.stop()
        if self._watch is not None:
            self._watch.close()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        sandboxes = list(self._sandboxes.values())
        pooled = self._pool.drain()
        if remove_sandboxes:
            await asyncio.gather(
                *(self._end(sb, expired=False) for sb in sandboxes),
                *(self._end_pooled(sb) for sb in pooled),
                return_exceptions=True,
            )
        else:
            for sandbox in [*sandboxes, *pooled]:
                sandbox._detach()
        self._runtime.close()
        self._unlock_data_dir()

    async def status(self) -> EngineStatus:
        """Check the engine and the image now (two quick Docker calls); never raises."""
        image, runtime = self.config.image, self.config.runtime or "runc"
        try:
            version = await self._runtime.version()
            image_id = await self._runtime.image_id(image)
            runtimes = (await self._runtime.host()).runtimes if self.config.runtime else ()
        except SandboxError as exc:
            return EngineStatus(docker_version=None, image=image, image_id=None, problem=str(exc), runtime=runtime)
        problem = None
        if image_id is None:
            problem = f"Kernel image {image!r} is missing: build it with `make image`."
        elif self.config.runtime and self.config.runtime not in runtimes:
            problem = (
                f"Docker has no runtime {runtime!r} (it has {', '.join(runtimes)}): register it "
                "(`make gvisor` for runsc), or unset KERNELGATE_RUNTIME."
            )
        disk_limit = self.config.disk_limit if self._limit_disk else None
        return EngineStatus(
            docker_version=version,
            image=image,
            image_id=image_id,
            problem=problem,
            disk_limit=disk_limit,
            runtime=runtime,
        )

    # -- sandboxes --------------------------------------------------------------------------------

    async def create(self, spec: SandboxSpec | None = None) -> Sandbox:
        """Start a sandbox and wait until its kernel answers.

        Raises MemoryLimitTooLarge or CapacityExceeded before anything is made; ImageNotFound,
        DockerUnavailable, or SandboxStartError; a failed or cancelled start leaves nothing behind.
        """
        self._check_running()
        spec = spec or SandboxSpec()
        self._admit(spec)
        pooled = self._pool.take(spec)
        if pooled is not None:
            return await self._claim(pooled, spec)
        sandbox = self._new_sandbox(spec)
        self._sandboxes[sandbox.id] = sandbox
        await self._started(sandbox, sandbox._create())
        sandbox._save_activity()  # its deadline, should this process die before the reaper runs
        return sandbox

    def _new_sandbox(self, spec: SandboxSpec, pooled: str | None = None) -> Sandbox:
        return self._sandbox(f"sbx_{secrets.token_hex(12)}", spec, time.time(), pooled)

    def _sandbox(self, sandbox_id: str, spec: SandboxSpec, created_at: float, pooled: str | None) -> Sandbox:
        """A sandbox of this manager, new or an earlier manager's to adopt."""
        return Sandbox(
            sandbox_id, spec, self.config, self._runtime, created_at, limit_disk=self._limit_disk, pooled=pooled
        )

    async def _started(self, sandbox: Sandbox, start: Coroutine[Any, Any, None]) -> None:
        """Run `start` to its end; a failed start's sandbox is removed, and if the caller goes away
        mid-start the start still finishes and what it made is removed after."""
        starting = asyncio.ensure_future(start)
        try:
            await asyncio.shield(starting)
        except asyncio.CancelledError:
            self._spawn(self._end_after(starting, sandbox))
            raise
        except BaseException:
            await self._end_any(sandbox)
            raise

    async def _claim(self, sandbox: Sandbox, spec: SandboxSpec) -> Sandbox:
        """Bind a ready pool sandbox to `spec`: its id, its lifetime and labels, its files."""
        del self._unclaimed[sandbox.id]
        sandbox._claim(spec)
        self._sandboxes[sandbox.id] = sandbox
        try:
            for name, data in spec.files.items():
                await sandbox.write_file(name, data)
            sandbox._save_activity()
        except BaseException:
            await self._end(sandbox, expired=False)
            raise
        self._spawn(sandbox._prioritize())
        return sandbox

    async def _make_pooled(self, tier: str) -> Sandbox:
        """A new sandbox for the pool, started and warmed; removed if that fails or is cancelled."""
        sandbox = self._new_sandbox(SandboxSpec(memory_limit=tier), pooled="true")
        self._unclaimed[sandbox.id] = sandbox

        async def start() -> None:
            await sandbox._create()
            error = await sandbox._warm(self.config.warm_imports)
            if error:
                log.warning("A pooled kernel's warm imports failed (KERNELGATE_WARM_IMPORTS?): %s", error)
            sandbox._save_activity()

        await self._started(sandbox, start())
        return sandbox

    def _discard_pooled(self, sandbox: Sandbox) -> None:
        self._spawn(self._end_pooled(sandbox))

    async def _end_pooled(self, sandbox: Sandbox) -> None:
        self._unclaimed.pop(sandbox.id, None)
        await sandbox._destroy(SandboxNotFound(sandbox.id))

    def _busy(self) -> int:
        return sum(1 for sandbox in self._sandboxes.values() if sandbox.busy)

    def pool_sizes(self) -> dict[str, int]:
        """The warm pool's ready sandboxes per memory limit (`{"1g": 4}`); empty when there is no pool."""
        return self._pool.sizes()

    def _admit(self, spec: SandboxSpec) -> None:
        """Refuse a sandbox the host cannot hold. Synchronous, so concurrent creates cannot race past it."""
        if self._host_memory and spec.memory_bytes > self._host_memory:
            raise MemoryLimitTooLarge(spec.memory_limit, self._host_memory)
        if len(self._sandboxes) >= self.config.max_sandboxes:
            msg = (
                f"{len(self._sandboxes)} sandboxes are live, the most this gateway runs at once: delete one, or "
                "retry once one expires (KERNELGATE_MAX_SANDBOXES raises the cap)."
            )
            raise CapacityExceeded(msg)
        budget = self._host_memory * self.config.memory_overcommit
        committed = sum(sb.spec.memory_bytes for sb in self._sandboxes.values())
        if self._host_memory and committed + spec.memory_bytes > budget:
            msg = (
                f"The live sandboxes' memory limits add up to {committed / 1024**3:.1f} GiB; another "
                f"{spec.memory_limit} would pass the {budget / 1024**3:.1f} GiB this host allows "
                f"({self.config.memory_overcommit:g} x its memory): delete a sandbox, ask for less, or retry once "
                "one expires (KERNELGATE_MEMORY_OVERCOMMIT raises the budget)."
            )
            raise CapacityExceeded(msg)

    def get(self, sandbox_id: str) -> Sandbox:
        """The live sandbox; raises SandboxExpired or SandboxNotFound."""
        sandbox = self._sandboxes.get(sandbox_id)
        if sandbox is not None:
            return sandbox
        if self._ended.get(sandbox_id):
            raise SandboxExpired(sandbox_id)
        raise SandboxNotFound(sandbox_id)

    def sandboxes(self) -> list[Sandbox]:
        return list(self._sandboxes.values())

    async def remove(self, sandbox_id: str) -> None:
        """Remove the sandbox's container and files; raises SandboxNotFound if there is none."""
        await self._end(self.get(sandbox_id), expired=False)

    async def reap(self) -> list[str]:
        """Remove every idle sandbox past its expiry now; returns their ids. The reaper calls this."""
        now = time.time()
        expired = [sb for sb in self._sandboxes.values() if not sb.busy and sb.expires_at <= now]
        for sandbox in expired:
            await self._end(sandbox, expired=True)
        for sandbox in self._sandboxes.values():
            try:
                sandbox._save_activity()
            except OSError:
                log.warning("Cannot save sandbox %s's activity and deadline", sandbox.id, exc_info=True)
        if self._watch is not None and not self._watch.alive and self._state is _State.RUNNING:
            log.warning("Docker's event stream ended; subscribing again")
            await self._subscribe()
        return [sb.id for sb in expired]

    # -- insides ----------------------------------------------------------------------------------

    def _check_disk_limits(self) -> bool:
        if self.config.disk_limit is None:
            return False
        reason = disk_limits_unavailable()
        if reason is not None:
            log.warning("Sandboxes get no disk limit: %s (see the README's Security model).", reason)
        return reason is None

    def _lock_data_dir(self) -> None:
        fd = os.open(self.config.data_dir / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DataDirInUse(str(self.config.data_dir)) from None
        self._lock_fd = fd

    def _unlock_data_dir(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing drops the flock
            self._lock_fd = None

    def _check_running(self) -> None:
        if self._state is not _State.RUNNING:
            msg = f"The sandbox manager is {self._state.value}: start it before use."
            raise ManagerClosed(msg)

    async def _end(self, sandbox: Sandbox, *, expired: bool) -> None:
        if self._sandboxes.pop(sandbox.id, None) is None:
            return
        self._ended[sandbox.id] = expired
        while len(self._ended) > _REMEMBERED_ENDINGS:
            self._ended.popitem(last=False)
        error = SandboxExpired(sandbox.id) if expired else SandboxNotFound(sandbox.id)
        await sandbox._destroy(error)

    async def _end_after(self, starting: asyncio.Future[None], sandbox: Sandbox) -> None:
        with contextlib.suppress(BaseException):
            await starting
        await self._end_any(sandbox)

    async def _end_any(self, sandbox: Sandbox) -> None:
        """Remove a sandbox, live or the pool's."""
        if sandbox.id in self._unclaimed:
            await self._end_pooled(sandbox)
        else:
            await self._end(sandbox, expired=False)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.reap_interval)
            try:
                await self.reap()
            except Exception:
                log.exception("The sandbox reaper failed; it tries again in %s s", self.config.reap_interval)
            self._pool.tend()

    async def _subscribe(self) -> None:
        self._watch = await self._runtime.watch(f"{DATA_DIR}={self.config.data_dir}", self._on_event)

    def _on_event(self, event: ContainerEvent) -> None:
        """From the events thread: hand the event to the loop."""
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
            self._loop.call_soon_threadsafe(self._dispatch, event)

    def _dispatch(self, event: ContainerEvent) -> None:
        for sandboxes in (self._sandboxes, self._unclaimed):
            for sandbox in sandboxes.values():
                if sandbox.container_id == event.container_id:
                    sandbox._notify(event.action)

    async def _recover(self) -> None:
        """Adopt the live sandboxes of an earlier manager of this data directory; remove the rest."""
        found: dict[tuple[bool, bool], list[str]] = {}  # (pool's, kept) -> sandbox ids
        for info in await self._runtime.list_managed(f"{DATA_DIR}={self.config.data_dir}"):
            labels = labels_of(info.labels)
            unclaimed = labels.get(POOLED) == "true"
            kept = await (self._recover_pooled(info) if unclaimed else self._recover_one(info, labels))
            found.setdefault((unclaimed, kept), []).append(info.labels.get(SANDBOX_ID) or info.id)
        self.recovery = Recovery(
            adopted=tuple(found.get((False, True), ())),
            removed=tuple(found.get((False, False), ())),
            pool_adopted=tuple(found.get((True, True), ())),
            pool_removed=tuple(found.get((True, False), ())),
        )
        await self._remove_orphans()
        known = self._sandboxes.keys() | self._unclaimed.keys()
        for leftover in self.config.sandboxes_dir.iterdir():
            if leftover.name not in known:
                await asyncio.to_thread(remove_home, leftover)
        for parent in (self.config.run_dir, self.config.control_dir):
            for leftover in parent.iterdir():
                if leftover.name not in known:
                    await asyncio.to_thread(shutil.rmtree, leftover, True)

    async def _recover_pooled(self, info: ContainerInfo) -> bool:
        """Keep a ready pool sandbox an earlier manager made, if this pool wants it; else remove it."""
        sandbox_id = info.labels.get(SANDBOX_ID, "")
        try:
            spec, created_at = spec_from_labels(info.labels)
        except (KeyError, ValueError):
            await self._runtime.remove(info.id)
            return False
        sandbox = self._sandbox(sandbox_id, spec, created_at, pooled="true")
        self._unclaimed[sandbox_id] = sandbox
        # Only a running kernel still holds its warm imports; only a ready mark says it was never claimed.
        if self.config.adopt and info.running and sandbox._ready_for_pool() and self._pool.adopt(sandbox):
            try:
                await sandbox._adopt(info)
            except (SandboxError, OSError) as exc:
                log.warning("Removing pooled sandbox %s, which could not be adopted: %s", sandbox_id, exc)
                self._pool.drop(sandbox)
            else:
                return True
        await self._end_pooled(sandbox)
        return False

    async def _recover_one(self, info: ContainerInfo, labels: dict[str, str]) -> bool:
        """Adopt the sandbox, or remove it; whether it was kept. `labels`: its own or its claim's."""
        sandbox_id = info.labels.get(SANDBOX_ID, "")
        try:
            spec, created_at = spec_from_labels(labels)
        except (KeyError, ValueError):
            log.warning("Removing container %s: its labels are not a sandbox's", info.id[:12])
            await self._runtime.remove(info.id)
            return False
        sandbox = self._sandbox(sandbox_id, spec, created_at, labels.get(POOLED))
        sandbox._load_activity()
        self._sandboxes[sandbox_id] = sandbox
        if not self.config.adopt or sandbox.expires_at <= time.time():
            await self._end(sandbox, expired=self.config.adopt)
            return False
        try:
            await sandbox._adopt(info)
        except (SandboxError, OSError) as exc:
            log.warning("Removing sandbox %s, which could not be adopted: %s", sandbox_id, exc)
            await self._end(sandbox, expired=False)
            return False
        log.info("Adopted sandbox %s", sandbox_id)
        return True

    async def _remove_orphans(self) -> None:
        """Remove containers whose data directory is gone: no manager can ever adopt them."""
        for info in await self._runtime.list_managed(f"{MANAGED_LABEL}=true"):
            data_dir = info.labels.get(DATA_DIR)
            if data_dir and not await asyncio.to_thread(Path(data_dir).exists):
                log.warning("Removing container %s: its data directory %s is gone", info.id[:12], data_dir)
                await self._runtime.remove(info.id)


def labels_of(labels: dict[str, str]) -> dict[str, str]:
    """A managed container's sandbox labels, as its manager knows them: Docker's own, or for a sandbox
    claimed from the warm pool (whose Docker labels were fixed when the pool made it) its claim's.

    The claim is read from the sandbox's home in the data directory the labels name, where only the
    manager writes; anything unreadable there leaves Docker's labels, which a manager then removes."""
    if labels.get(POOLED) != "true" or not labels.get(DATA_DIR) or not labels.get(SANDBOX_ID):
        return labels
    home = SandboxConfig.model_construct(data_dir=Path(labels[DATA_DIR])).sandboxes_dir / labels[SANDBOX_ID]
    try:
        claim = json.loads(read_small_file(home / CLAIM_FILE, _CLAIM_MAX))
    except FileNotFoundError:
        return labels
    except (OSError, ValueError):
        return {**labels, POOLED: CLAIMED}  # claimed, but its spec is lost: not a sandbox to adopt
    if not isinstance(claim, dict) or claim.get(SANDBOX_ID) != labels[SANDBOX_ID]:
        return {**labels, POOLED: CLAIMED}
    return {str(key): str(value) for key, value in claim.items()}
