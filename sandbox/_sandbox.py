"""A sandbox: one container, the kernel in it, and its /mnt/data, with the life of each execution."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import math
import os
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ._backend import Backend, ContainerInfo, ContainerSpec, Death
from ._budget import OutputBudget, OutputLimits
from ._config import SandboxConfig
from ._disk import create_disk, release_disk
from ._errors import (
    DiskFull,
    FileNotFoundInSandbox,
    InvalidFilePath,
    SandboxError,
    SandboxNotFound,
    SandboxStartError,
)
from ._files import FileStore, Scan, changed
from ._kernel import Idle, Ignored, KernelClient
from ._labels import labels_for
from ._models import (
    ErrorOutput,
    Execution,
    ExecutionEvent,
    ExecutionStatus,
    Finished,
    Output,
    SandboxFile,
    SandboxSpec,
)

__all__ = ["CLAIMED", "CLAIM_FILE", "Sandbox", "remove_home"]

log = logging.getLogger("kernelgate.sandbox")

_DISK_IMAGE = "data.img"
# Beside a sandbox's files in its home (the code sees only data/): the pool's marks.
_READY = ".pool-ready"
CLAIM_FILE = "claim.json"
CLAIMED = "claimed"
# A pooled container's CPU weight (Docker's cpu shares; a live sandbox has 1024): under contention a
# booting pool kernel gets a sliver of a core, and a running execution the rest.
_POOL_CPU_WEIGHT = 16

# How often a waiting execution looks up from the kernel to check its deadline and the container.
_POLL = 0.1
# Up to this many entries, /mnt/data is scanned on the event loop (tens of microseconds).
_SCAN_IN_PLACE = 200


# The kernel replied but its idle status never came (dropped with a message over the size limit): done
# after this long with no output at all, and a kernel that does not answer a new subscription by then
# is restarted. (A kernel still sending a huge buffer keeps its output coming, so it is never cut short.)
_IDLE_AFTER_REPLY = 2.0
_RESUBSCRIBE_WAIT = 10.0
_LOST_IDLE = (
    "the kernel's end-of-execution message never arrived, so some output may be missing "
    "(the code sent more, or larger, messages than the sandbox reads)"
)


@dataclass(frozen=True, slots=True)
class _Verdict:
    status: ExecutionStatus
    state_kept: bool = True
    message: str | None = None
    note: str | None = None
    """Said in the outputs' closing note rather than as the execution's message."""


class Sandbox:
    """A live, stateful Python kernel in its own container. Get one from `SandboxManager.create`."""

    def __init__(
        self,
        sandbox_id: str,
        spec: SandboxSpec,
        config: SandboxConfig,
        backend: Backend,
        created_at: float,
        *,
        limit_disk: bool = False,
        pooled: str | None = None,
    ) -> None:
        """`pooled`: `true` for a sandbox the warm pool makes, `claimed` once the pool has handed it out."""
        self.id = sandbox_id
        self.spec = spec
        self.created_at = created_at
        self.last_active = created_at
        self._config = config
        self._home = config.sandboxes_dir / sandbox_id
        self._run_dir = config.run_dir / sandbox_id
        self._control_dir = config.control_dir / sandbox_id
        self._limit_disk = limit_disk
        self._files = FileStore(self._home / "data", config.user)
        self._backend = backend
        self._box = backend.box(
            sandbox_id, self._control_dir, self._run_dir, config.kernel_start_timeout, config.max_message_bytes
        )
        self._limits = OutputLimits(
            text_chars=config.max_output_chars,
            rich_outputs=config.max_displays,
            rich_bytes=config.max_display_bytes,
        )
        self._lock = asyncio.Lock()
        self._producers: set[asyncio.Task[None]] = set()
        self._ended: SandboxError | None = None
        self._made = False
        """Its directories exist (set early in a start; an adopted sandbox's were made by its first manager)."""
        self._saved_activity = 0.0
        self._saved_deadline = 0
        self._pooled = pooled

    def __repr__(self) -> str:
        return f"<Sandbox {self.id} memory_limit={self.spec.memory_limit}>"

    # -- what callers read ------------------------------------------------------------------------

    @property
    def expires_at(self) -> float:
        """Unix time at which the sandbox expires unless something uses it first."""
        return self.last_active + self.spec.idle_timeout

    @property
    def busy(self) -> bool:
        return self._lock.locked()

    @property
    def data_dir(self) -> Path:
        """The host directory that is /mnt/data inside the sandbox."""
        return self._files.root

    @property
    def container_id(self) -> str | None:
        return self._box.id

    def memory_used(self) -> int | None:
        """Bytes of memory the sandbox uses now, as its memory limit counts them; None if not known here."""
        return self._backend.memory_used(self._box.id) if self._box.id else None

    @property
    def from_pool(self) -> bool:
        """Whether the warm pool made this sandbox before create() claimed it."""
        return self._pooled is not None

    @property
    def labels(self) -> dict[str, str]:
        """What the sandbox is, as container labels: what a new manager adopts it by (`labels_of`)."""
        return labels_for(self._config.data_dir, self.id, self.spec, self.created_at, self._pooled)

    # -- running code -----------------------------------------------------------------------------

    async def execute(self, code: str, *, timeout: float | None = None) -> Execution:
        """Run code in the kernel and return everything it produced.

        `timeout` in seconds (None: the manager's `execution_timeout`) counts from when the code starts,
        not from when it was queued behind another execution of this sandbox.
        """
        async for event in self.stream(code, timeout=timeout):
            if isinstance(event, Finished):
                return event.execution
        msg = "an execution stream always ends with Finished"
        raise AssertionError(msg)

    async def stream(self, code: str, *, timeout: float | None = None) -> AsyncIterator[ExecutionEvent]:
        """Run code, yielding each output as the kernel produces it and a `Finished` event last.

        Closing the stream early, or cancelling its consumer, interrupts the code: it is never left
        running unobserved. The execution runs in a task of its own, so that the interrupt (and, if
        the code ignores it, the restart) completes even when the consumer's cancellation is repeated,
        as anyio's cancel scopes do, and the next execution waits for it.
        """
        self._check_open()
        events: asyncio.Queue[ExecutionEvent | BaseException] = asyncio.Queue()
        abandoned = asyncio.Event()
        producer = asyncio.get_running_loop().create_task(self._produce(code, timeout, events, abandoned))
        self._producers.add(producer)
        producer.add_done_callback(self._producers.discard)
        try:
            while True:
                event = await events.get()
                if isinstance(event, BaseException):
                    raise event
                yield event
                if isinstance(event, Finished):
                    return
        finally:
            abandoned.set()  # nothing to do once the execution has finished

    async def _produce(
        self,
        code: str,
        timeout: float | None,
        events: asyncio.Queue[ExecutionEvent | BaseException],
        abandoned: asyncio.Event,
    ) -> None:
        try:
            async for event in self._execution(code, timeout, abandoned):
                events.put_nowait(event)
        except BaseException as exc:
            task = asyncio.current_task()
            if self._ended is not None and not (task and task.cancelling()):
                # Removed mid-execution: whatever broke (Docker's missing container, zmq cancelling the
                # poll of a closed socket), what happened is that the sandbox is gone.
                events.put_nowait(self._ended)
                return
            events.put_nowait(exc)
            if not isinstance(exc, Exception):
                raise

    async def _execution(
        self, code: str, timeout: float | None, abandoned: asyncio.Event
    ) -> AsyncIterator[ExecutionEvent]:
        limit = timeout if timeout is not None else self._config.execution_timeout
        async with self._lock:
            kernel = await self._ready_kernel()
            self.touch()
            self._box.oom.clear()
            oom_kills = self._box.oom_kills()
            before = await self._scan()
            started = time.monotonic()
            budget = OutputBudget(self._limits)
            outputs: list[Output] = []
            verdict: _Verdict | None = None
            async for item in self._run(kernel, code, limit, abandoned):
                if isinstance(item, _Verdict):
                    verdict = item
                elif isinstance(item, Ignored):
                    budget.ignore()
                else:
                    for kept in budget.admit(item):
                        outputs.append(kept)
                        yield kept
            if verdict is None:  # abandoned: the code was stopped and nobody waits for a result
                return
            if verdict.note:
                budget.note(verdict.note)
            count = await kernel.execution_count(1.0) if verdict.state_kept else None
            self.touch()
            files = await self._changes(before, budget)
            for kept in budget.closing():
                outputs.append(kept)
                yield kept
            raised = verdict.status is ExecutionStatus.OK and budget.last_error is not None
            yield Finished(
                execution=Execution(
                    status=ExecutionStatus.ERROR if raised else verdict.status,
                    outputs=tuple(outputs),
                    error=budget.last_error,
                    duration=time.monotonic() - started,
                    files=files,
                    state_kept=verdict.state_kept,
                    message=verdict.message or self._child_oom_message(oom_kills),
                    execution_count=count,
                    dropped_text_chars=budget.dropped_chars,
                    dropped_display_bytes=budget.dropped_rich_bytes,
                )
            )

    async def _run(
        self, kernel: KernelClient, code: str, limit: float | None, abandoned: asyncio.Event
    ) -> AsyncIterator[Output | Ignored | _Verdict]:
        kernel.execute(code)
        deadline = time.monotonic() + limit if limit is not None else math.inf
        replied_at: float | None = None
        while (remaining := deadline - time.monotonic()) > 0:
            if abandoned.is_set():
                await self._stop(kernel, [])
                return
            item = await kernel.next_output(min(_POLL, remaining))
            if isinstance(item, Idle):
                yield _Verdict(ExecutionStatus.OK)
                return
            if item is not None:
                yield item
            elif self._box.died.is_set() and (info := await self._box.stopped()) is not None:
                yield await self._recover(await self._box.death(info))
                return
            elif await kernel.replied():
                replied_at = replied_at or time.monotonic()
                if time.monotonic() - replied_at >= _IDLE_AFTER_REPLY:
                    yield await self._lost_output(kernel)
                    return
        late: list[Output | Ignored] = []
        kept = await self._stop(kernel, late)
        for output in late:
            yield output
        assert limit is not None
        if kept:
            message = f"Execution timed out after {limit:g} s and was interrupted; the kernel's variables are kept."
        else:
            message = (
                f"Execution timed out after {limit:g} s and did not stop within "
                f"{self._config.interrupt_grace:g} s of the interrupt, so the kernel was restarted; "
                "its variables are gone."
            )
        yield _Verdict(ExecutionStatus.TIMEOUT, state_kept=kept, message=message)

    async def _lost_output(self, kernel: KernelClient) -> _Verdict:
        """The kernel replied but its output stopped short: subscribe again, or restart a kernel that
        no longer publishes anything."""
        try:
            await kernel.resubscribe(_RESUBSCRIBE_WAIT)
        except TimeoutError:
            await self._restart()
            message = "The kernel stopped sending its output, so it was restarted; its variables are gone."
            return _Verdict(ExecutionStatus.KERNEL_DIED, state_kept=False, message=message, note=_LOST_IDLE)
        return _Verdict(ExecutionStatus.OK, note=_LOST_IDLE)

    async def _stop(self, kernel: KernelClient, late: list[Output | Ignored]) -> bool:
        """Interrupt the running code; restart the kernel if it is not idle within the grace period.

        Returns whether the kernel (and its variables) survived; outputs that arrive meanwhile go to `late`.
        """
        await self._box.interrupt()
        if await self._until_idle(kernel, self._config.interrupt_grace, late):
            return True
        await self._restart()
        return False

    async def _until_idle(self, kernel: KernelClient, seconds: float, outputs: list[Output | Ignored]) -> bool:
        """Collect the current execution's outputs until the kernel is idle (True), or its container
        stops, or `seconds` pass (False)."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            item = await kernel.next_output(min(_POLL, remaining))
            if isinstance(item, Idle):
                return True
            if item is not None:
                outputs.append(item)
            elif self._box.died.is_set() and await self._box.stopped() is not None:
                return False
        return False

    async def _scan(self) -> Scan:
        """/mnt/data's files. A small directory is scanned in place: a thread hop costs more than the
        scan (about 1 ms per execution, measured with make bench); past a few hundred entries, in a thread."""
        found = self._files.scan_small(_SCAN_IN_PLACE)
        return found if found is not None else await asyncio.to_thread(self._files.scan)

    async def _changes(self, before: Scan, budget: OutputBudget) -> tuple[SandboxFile, ...]:
        """The files changed since `before` (the first `max_listed_files`; a note says how many more),
        compared in a thread when the directory is large; names left out are noted too."""
        limit = self._config.max_listed_files
        after = self._files.scan_small(_SCAN_IN_PLACE) if before.entries <= _SCAN_IN_PLACE else None
        if after is None:

            def scan_and_compare() -> tuple[Scan, tuple[tuple[SandboxFile, ...], int]]:
                after = self._files.scan()
                return after, changed(before, after, limit)

            after, (files, count) = await asyncio.to_thread(scan_and_compare)
        else:
            files, count = changed(before, after, limit)
        if after.unnamed:
            budget.note(f"{after.unnamed:,} entries in /mnt/data have names that are not UTF-8 and are not listed")
        if count > len(files):
            budget.note(f"the code changed {count:,} files in /mnt/data; the first {len(files):,} by name are listed")
        return files

    def _child_oom_message(self, kills_before: int | None) -> str | None:
        """When the kernel lived through the execution but the OOM killer took a process it started."""
        if not self._oom_since(kills_before):
            return None
        return (
            f"A process started by the code was killed for exceeding the sandbox's "
            f"{self.spec.memory_limit} memory limit; the kernel and its variables are kept."
        )

    def _oom_since(self, kills_before: int | None) -> bool:
        """Whether the OOM killer struck during this execution: the cgroup's counter, or Docker's event."""
        kills_now = self._box.oom_kills()
        counted = kills_before is not None and kills_now is not None and kills_now > kills_before
        return counted or self._box.oom.is_set()

    async def _recover(self, death: Death) -> _Verdict:
        await self._restart()
        if death.oom_killed:
            message = (
                f"The code used more than the sandbox's {self.spec.memory_limit} memory limit, so the kernel "
                "was killed and restarted; its variables are gone."
            )
            return _Verdict(ExecutionStatus.OUT_OF_MEMORY, state_kept=False, message=message)
        message = f"The kernel died (exit code {death.exit_code}) and was restarted; its variables are gone."
        return _Verdict(ExecutionStatus.KERNEL_DIED, state_kept=False, message=message)

    async def restart(self) -> None:
        """Start a fresh kernel: every variable is lost, files in /mnt/data are kept."""
        async with self._lock:
            self._check_open()
            self.touch()
            await self._restart()

    # -- files in /mnt/data -----------------------------------------------------------------------

    async def write_file(self, name: str, data: bytes | Path | BinaryIO) -> SandboxFile:
        """Create or replace /mnt/data/`name` with bytes, a copy of a host file, or a binary stream's rest."""
        with self._file_errors(name):
            return await asyncio.to_thread(self._files.write, name, data)

    async def read_file(self, name: str) -> bytes:
        with self._file_errors(name):
            return await asyncio.to_thread(self._files.read, name)

    @contextlib.contextmanager
    def open_file(self, name: str) -> Iterator[tuple[SandboxFile, int]]:
        """Open a file for reading as a raw fd (for streaming large files); closed on exit."""
        with self._file_errors(name), self._files.open(name) as opened:
            yield opened

    async def list_files(self) -> list[SandboxFile]:
        """Every regular file under /mnt/data, by name."""
        with self._file_errors("."):
            return list(await asyncio.to_thread(lambda: self._files.scan().listing()))

    async def delete_file(self, name: str) -> None:
        with self._file_errors(name):
            await asyncio.to_thread(self._files.delete, name)

    @contextlib.contextmanager
    def _file_errors(self, name: str) -> Iterator[None]:
        self._check_open()
        self.touch()
        try:
            yield
        except FileNotFoundError as exc:
            raise FileNotFoundInSandbox(name, self.id) from exc
        except (IsADirectoryError, NotADirectoryError) as exc:
            raise InvalidFilePath(name, "a directory is in the way") from exc
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DiskFull(name, self.id) from exc
            raise

    # -- lifecycle (driven by SandboxManager) ------------------------------------------------------

    def touch(self) -> None:
        """Count as activity now: pushes expiry back by `spec.idle_timeout`. Every operation does this."""
        self.last_active = time.time()

    def _save_activity(self) -> None:
        """Keep last activity on disk (as a file's mtime) so that expiry survives a manager restart,
        and tell the container when to stop itself should no manager be left to remove it."""
        if self._ended is not None or not self._made:
            return  # being removed (its files may be gone already) or let go; or its directories not made yet
        if self._saved_activity != self.last_active:
            marker = self._home / ".last_active"
            marker.touch()
            os.utime(marker, (self.last_active, self.last_active))
            self._saved_activity = self.last_active
        # A long execution is not idleness: keep a busy sandbox's deadline an idle period ahead.
        expires_at = max(self.expires_at, time.time() + self.spec.idle_timeout) if self.busy else self.expires_at
        deadline = math.ceil(expires_at + self._config.self_stop_grace)
        if deadline != self._saved_deadline:
            # In the read-only control directory: the kernel can neither read a link planted here into
            # our write nor change the deadline. The rename means the watchdog never reads half a number.
            written = self._control_dir / "expires-at.tmp"
            written.write_text(f"{deadline}\n")
            written.replace(self._control_dir / "expires-at")
            self._saved_deadline = deadline

    def _load_activity(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.last_active = self._saved_activity = (self._home / ".last_active").stat().st_mtime

    def _detach(self) -> None:
        """Let go of the kernel but leave the container running, for a later manager to adopt."""
        with contextlib.suppress(OSError):
            self._save_activity()
        self._box.close_kernel()
        self._ended = SandboxNotFound(self.id)

    def _check_open(self) -> None:
        if self._ended is not None:
            raise self._ended

    def _notify(self, action: str) -> None:
        """A Docker event for this sandbox's container (called on the event loop)."""
        self._box.notify(action)

    async def _ready_kernel(self) -> KernelClient:
        self._check_open()
        if self._box.kernel is None:  # a restart failed earlier: try once more
            await self._restart()
        assert self._box.kernel is not None
        return self._box.kernel

    async def _restart(self) -> None:
        await self._box.restart(self._check_open)

    async def _create(self) -> None:
        """Make the directories, place the spec's files, start the container and connect."""
        self._home.mkdir(parents=True)
        if self._limit_disk:
            assert self._config.disk_limit is not None
            image, limit, files = self._home / _DISK_IMAGE, self._config.disk_limit, self._config.max_files
            try:
                await asyncio.to_thread(create_disk, image, self._files.root, limit, files)
            except OSError as exc:
                msg = f"The /mnt/data disk of sandbox {self.id} could not be made: {exc}"
                raise SandboxStartError(msg, self.id) from exc
        else:
            self._files.root.mkdir()
        self._run_dir.mkdir(parents=True)
        for directory in (self._files.root, self._run_dir):
            if self._files.chowns:
                os.chown(directory, *self._config.user)
        self._control_dir.mkdir(mode=0o755, parents=True)  # the manager's: the kernel only reads it
        self._made = True
        for name, data in self.spec.files.items():
            await self.write_file(name, data)
        await self._box.start(self._container_spec(), self._files.owner if self._files.chowns else None)

    async def _warm(self, modules: tuple[str, ...]) -> str | None:
        """Import `modules` in the kernel without a trace in the code's namespace, history or execution
        count; mark the sandbox ready for the pool. Returns the import's error, if it had one.

        Raises SandboxStartError when the kernel dies or does not finish within the start timeout."""
        kernel = await self._ready_kernel()
        error = None
        if modules:
            kernel.execute(f"[__import__(name) for name in {list(modules)!r}]", silent=True)
            outputs: list[Output | Ignored] = []
            if not await self._until_idle(kernel, self._config.kernel_start_timeout, outputs):
                timeout = self._config.kernel_start_timeout
                msg = f"The kernel of pooled sandbox {self.id} died or ran past {timeout:g} s during its warm imports."
                raise SandboxStartError(msg, self.id)
            errors = [f"{item.name}: {item.value}" for item in outputs if isinstance(item, ErrorOutput)]
            error = errors[-1] if errors else None
            await kernel.execution_count(1.0)  # its reply, so that the shell channel starts empty
        (self._home / _READY).touch()
        return error

    def _seems_alive(self) -> bool:
        """Not removed, and no sign that its container stopped (no Docker call)."""
        return self._ended is None and not self._box.died.is_set()

    def _ready_for_pool(self) -> bool:
        """Warmed and never handed out (on disk, so that a restarted manager can tell)."""
        return (self._home / _READY).exists()

    def _claim(self, spec: SandboxSpec) -> None:
        """Become the sandbox `spec` asks for: made by the pool for its memory limit, never used.

        The claim is kept beside the sandbox's files (its container's labels cannot change), and the
        ready mark goes first: a sandbox is never adopted into the pool again once it was handed out."""
        (self._home / _READY).unlink(missing_ok=True)
        now = time.time()
        self.spec, self.created_at, self.last_active, self._pooled = spec, now, now, CLAIMED
        written = self._home / f"{CLAIM_FILE}.tmp"
        written.write_text(json.dumps(self.labels))
        written.replace(self._home / CLAIM_FILE)

    async def _adopt(self, info: ContainerInfo) -> None:
        """Reconnect to a container an earlier manager started."""
        self._made = True
        await self._box.adopt(info)

    def _container_spec(self) -> ContainerSpec:
        uid, gid = self._config.user
        memory = self.spec.memory_bytes
        return ContainerSpec(
            name=self._box.name,
            image=self._config.image,
            labels=self.labels,
            memory_bytes=memory,
            cpus=self.spec.cpus or self._config.cpus,
            pids_limit=self._config.pids_limit,
            user=f"{uid}:{gid}",
            network=self.spec.network,
            runtime=self._config.runtime,
            tmpfs_bytes=memory,  # tmpfs pages count against the memory limit anyway
            data_dir=self._files.root,
            environment={"KERNELGATE_SELF_STOP_CHECK": f"{self._config.self_stop_check:g}"},
            # The pool's kernels boot and import behind the executions of live sandboxes, never before.
            cpu_weight=_POOL_CPU_WEIGHT if self._pooled else None,
        )

    async def _prioritize(self) -> None:
        """Give a claimed pool sandbox a live sandbox's share of the CPU (in the background: a claim waits
        for no Docker call)."""
        try:
            await self._box.set_cpu_weight(None)
        except SandboxError as exc:  # it runs on, at the pool's low weight: slower only under contention
            if self._ended is None:
                log.warning("Sandbox %s keeps the pool's low CPU weight: %s", self.id, exc)

    async def _destroy(self, reason: SandboxError) -> None:
        """Remove the container and every file; later use raises `reason`."""
        self._ended = reason
        await self._box.remove()
        await asyncio.to_thread(remove_home, self._home)
        await asyncio.to_thread(shutil.rmtree, self._run_dir, True)
        await asyncio.to_thread(shutil.rmtree, self._control_dir, True)


def remove_home(home: Path) -> None:
    """Delete a sandbox's own files, unmounting its /mnt data filesystem first if it has one."""
    release_disk(home / _DISK_IMAGE, home / "data")
    shutil.rmtree(home, ignore_errors=True)
