"""The warm pool: fresh sandboxes kept ready per memory limit, so that most creates are a claim, not a boot.

A pooled sandbox is made like any other (its own container, directories and kernel), with the pool's
label and a low CPU weight; its kernel imports the configured modules unseen, and it is marked ready.
`SandboxManager.create` takes one whose memory limit matches and binds it to the caller's spec; the pool
then makes another. A pooled sandbox is never listed among the manager's sandboxes and never handed out
twice: taking it is synchronous, and a claim drops its ready mark before anything else.

Refills are throttled so that executions go first: one sandbox at a time, none while as many executions
run as the host has CPUs, and each at a low CPU weight until it is claimed. While the host's available
memory is under `pool_memory_reserve` the pool makes nothing and gives back one sandbox per reaper pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable

from ._config import SandboxConfig
from ._errors import SandboxError
from ._models import SandboxSpec, parse_memory_limit
from ._sandbox import Sandbox

__all__ = ["Pool"]

log = logging.getLogger("kernelgate.sandbox")

# While this many executions run per CPU, the pool waits before it makes a sandbox.
_BUSY_POLL = 0.2
# After a failed refill, wait this long (doubling per failure in a row) before the next try.
_RETRY_FIRST, _RETRY_MAX = 2.0, 60.0


class Pool:
    """The manager's warm pool. Not thread-safe: everything runs on the manager's event loop."""

    def __init__(
        self,
        config: SandboxConfig,
        make: Callable[[str], Awaitable[Sandbox]],
        discard: Callable[[Sandbox], None],
        available_memory: Callable[[], int | None],
        busy: Callable[[], int],
    ) -> None:
        """`make(tier)` starts and warms a pooled sandbox (removing it if that fails or is cancelled);
        `discard` has one removed in the background; `available_memory` is the host's, in bytes; `busy`
        counts the executions running now."""
        self._config = config
        self._make = make
        self._discard = discard
        self._available_memory = available_memory
        self._busy = busy
        self._targets: dict[int, tuple[str, int]] = {}
        for tier, size in config.pool.items():
            self._targets[parse_memory_limit(tier)] = (tier, size)
        self._ready: dict[int, list[Sandbox]] = {memory: [] for memory in self._targets}
        self._wake = asyncio.Event()
        self._filler: asyncio.Task[None] | None = None

    # -- what the manager asks --------------------------------------------------------------------

    def take(self, spec: SandboxSpec) -> Sandbox | None:
        """A ready sandbox that `spec` can be bound to, or None; synchronous, so never handed out twice."""
        ready = self._ready.get(spec.memory_bytes)
        if not ready or spec.network or (spec.cpus is not None and spec.cpus != self._config.cpus):
            return None
        self._wake.set()
        while ready:
            sandbox = ready.pop(0)
            if sandbox._seems_alive():
                return sandbox
            self._discard(sandbox)  # its container stopped
        return None

    def sizes(self) -> dict[str, int]:
        """Ready sandboxes per memory limit, as configured (`{"1g": 4}`)."""
        return {tier: len(self._ready[memory]) for memory, (tier, _) in self._targets.items()}

    def adopt(self, sandbox: Sandbox) -> bool:
        """Keep a ready sandbox an earlier manager made, if the pool still wants one of its limit."""
        memory = sandbox.spec.memory_bytes
        if memory not in self._targets or len(self._ready[memory]) >= self._targets[memory][1]:
            return False
        self._ready[memory].append(sandbox)
        return True

    def drop(self, sandbox: Sandbox) -> None:
        """Forget a sandbox `adopt` kept (its adoption failed)."""
        with contextlib.suppress(ValueError):
            self._ready[sandbox.spec.memory_bytes].remove(sandbox)

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        if self._targets:
            self._filler = asyncio.create_task(self._fill_forever(), name="kernelgate-pool")
            self._wake.set()

    async def stop(self) -> None:
        """Stop refilling (a sandbox being made is removed); the ready ones stay for the manager."""
        if self._filler is not None:
            self._filler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._filler

    def drain(self) -> list[Sandbox]:
        """Give up every ready sandbox (to be removed, or left for the next manager)."""
        members = [sandbox for ready in self._ready.values() for sandbox in ready]
        for ready in self._ready.values():
            ready.clear()
        return members

    def tend(self) -> None:
        """At each reaper pass: drop sandboxes whose container stopped, keep the rest from expiring, give
        one back while the host is short of memory, and refill."""
        for ready in self._ready.values():
            for sandbox in list(ready):
                if not sandbox._seems_alive():
                    ready.remove(sandbox)
                    self._discard(sandbox)
                    continue
                sandbox.touch()
                with contextlib.suppress(OSError):
                    sandbox._save_activity()
        if self._short_of_memory():
            fullest = max(self._ready.values(), key=len, default=[])
            if fullest:
                sandbox = fullest.pop()
                log.warning("The host is short of memory: the warm pool gives back sandbox %s", sandbox.id)
                self._discard(sandbox)
        self._wake.set()

    # -- refilling --------------------------------------------------------------------------------

    async def _fill_forever(self) -> None:
        failures = 0
        while True:
            await self._wake.wait()
            self._wake.clear()
            while (tier := self._wanted()) is not None and not self._short_of_memory():
                await self._executions_first()
                try:
                    sandbox = await self._make(tier)
                except Exception as exc:  # the pool must outlive any failure: it retries
                    failures += 1
                    delay = min(_RETRY_MAX, _RETRY_FIRST * 2 ** (failures - 1))
                    expected = isinstance(exc, SandboxError | OSError)  # Docker down, image gone, disk full
                    log.warning(
                        "The warm pool could not make a %s sandbox (%s); next try in %g s",
                        tier,
                        exc,
                        delay,
                        exc_info=not expected,
                    )
                    await asyncio.sleep(delay)
                    continue
                failures = 0
                self._ready[sandbox.spec.memory_bytes].append(sandbox)

    def _wanted(self) -> str | None:
        """The memory limit whose pool is furthest below its size, if any is."""
        missing = {memory: size - len(self._ready[memory]) for memory, (_, size) in self._targets.items()}
        memory = max(missing, key=lambda m: missing[m], default=None)
        return self._targets[memory][0] if memory is not None and missing[memory] > 0 else None

    async def _executions_first(self) -> None:
        cpus = os.cpu_count() or 1
        while self._busy() >= cpus:  # noqa: ASYNC110  # a count over many sandboxes' locks: no one event to wait on
            await asyncio.sleep(_BUSY_POLL)

    def _short_of_memory(self) -> bool:
        available = self._available_memory()
        return available is not None and available < self._config.pool_memory_reserve
