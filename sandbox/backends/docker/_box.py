"""One Docker container with a kernel in it, and the client connected to that kernel.

The sandbox above decides when to start, restart or remove; this module knows how, and notices when
the container stops (Docker's `die` and `oom` events, relayed by the manager).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..._backend import ContainerInfo, ContainerSpec, Death
from ..._errors import SandboxStartError
from ..._kernel import KernelClient, clear_run_dir, read_connection_file, write_connection_file

if TYPE_CHECKING:
    from ._engine import DockerBackend

__all__ = ["KernelContainer", "reweighable"]

# A kernel that died of SIGKILL, and how long to wait for Docker to say whether the OOM killer sent it.
_SIGKILLED = 137
_OOM_REPORT_WAIT = 1.0
_DEFAULT_CPU_SHARES = 1024


def reweighable(runtime: str | None) -> bool:
    """Whether a running container's CPU shares can be changed: runc's can (`docker update`); gVisor's
    runsc has no `update`, so its pooled sandboxes boot at a live sandbox's weight instead."""
    return runtime in (None, "runc")


class KernelContainer:
    def __init__(
        self,
        sandbox_id: str,
        control_dir: Path,
        run_dir: Path,
        runtime: DockerBackend,
        start_timeout: float,
        max_message_bytes: int,
    ) -> None:
        self.sandbox_id = sandbox_id
        self.name = f"kernelgate-{sandbox_id}"
        self.id: str | None = None
        self.kernel: KernelClient | None = None
        self.died = asyncio.Event()
        """Set by a `die` event; `stopped()` tells a real stop from a late event of a restart."""
        self.oom = asyncio.Event()
        """Set by an `oom` event: the OOM killer took a process in this container."""
        self._control_dir = control_dir
        self._run_dir = run_dir
        self._runtime = runtime
        self._start_timeout = start_timeout
        self._max_message_bytes = max_message_bytes
        self._connection: dict[str, Any] = {}
        self._runtime_name: str | None = None

    def notify(self, action: str) -> None:
        """A Docker event for this container (called on the event loop)."""
        if action == "oom":
            self.oom.set()
        elif action == "die":
            self.died.set()

    async def start(self, spec: ContainerSpec, owner: tuple[int, int] | None) -> None:
        """Write the connection file, run the container and wait for its kernel."""
        self._connection = write_connection_file(self._control_dir, self._run_dir, owner)
        self._runtime_name = spec.runtime
        self.id = await self._runtime.run(spec, self._run_dir, self._control_dir)
        await self._connect()

    async def adopt(self, info: ContainerInfo) -> None:
        """Reconnect to a container an earlier manager started, restarting it if it had stopped.

        Raises SandboxStartError when its connection file is unreadable or its kernel does not answer.
        """
        self.id = info.id
        self._runtime_name = info.runtime
        try:
            self._connection = read_connection_file(self._control_dir, self._run_dir)
        except (OSError, ValueError) as exc:
            msg = f"The kernel of sandbox {self.sandbox_id} cannot be reached: {exc}"
            raise SandboxStartError(msg, self.sandbox_id) from exc
        if info.running:
            await self._connect()
        else:
            await self.restart(lambda: None)

    async def restart(self, still_wanted: Callable[[], None]) -> None:
        """Kill the kernel and start a fresh one in the same container (/mnt/data is untouched).

        `still_wanted` is called once the old kernel is down and may raise to stop there.
        """
        assert self.id is not None
        self.close_kernel()
        await self._runtime.kill(self.id)
        await self._runtime.wait_stopped(self.id, timeout=10)
        still_wanted()
        clear_run_dir(self._run_dir)
        self.died.clear()
        self.oom.clear()
        await self._runtime.start(self.id)
        await self._connect()

    async def interrupt(self) -> None:
        """SIGINT to the container's init, which hands it to the kernel: a KeyboardInterrupt in the code."""
        assert self.id is not None
        await self._runtime.kill(self.id, "SIGINT")

    async def stopped(self) -> ContainerInfo | None:
        """The container's state if it really stopped; a `die` left over from a restart is cleared."""
        assert self.id is not None
        info = await self._runtime.inspect(self.id)
        if info.running:
            self.died.clear()
            return None
        return info

    async def death(self, info: ContainerInfo) -> Death:
        """How the stopped container's kernel died: the OOM killer, or another cause with its exit code."""
        oom = self.oom.is_set() or info.oom_killed
        if not oom and info.exit_code == _SIGKILLED:
            # A SIGKILL is nearly always the OOM killer, and Docker may report its kill after the death:
            # the `oom` event or the OOMKilled flag can trail the `die` event. Give them a moment.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.oom.wait(), _OOM_REPORT_WAIT)
            later = await self.stopped()
            oom = self.oom.is_set() or (later is not None and later.oom_killed)
        return Death(exit_code=info.exit_code, oom_killed=oom)

    def oom_kills(self) -> int | None:
        return self._runtime.oom_kills(self.id or "")

    async def set_cpu_weight(self, weight: int | None) -> None:
        assert self.id is not None
        if reweighable(self._runtime_name):
            await self._runtime.set_cpu_shares(self.id, weight or _DEFAULT_CPU_SHARES)

    def close_kernel(self) -> None:
        if self.kernel is not None:
            self.kernel.close()
            self.kernel = None

    async def remove(self) -> None:
        """Remove the container, by name if its start never returned an id."""
        self.close_kernel()
        await self._runtime.remove(self.id or self.name)

    async def _connect(self) -> None:
        """Connect to the kernel, failing fast if its container stops instead of answering."""
        kernel = KernelClient(self._connection, self._max_message_bytes)
        connecting = asyncio.ensure_future(kernel.connect(self._start_timeout))
        died = asyncio.ensure_future(self.died.wait())
        try:
            await asyncio.wait({connecting, died}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            died.cancel()
            if not connecting.done():
                connecting.cancel()
        if connecting.cancelled() or connecting.exception() is not None:
            kernel.close()
            await self._start_failed(connecting)
        self.kernel = kernel

    async def _start_failed(self, connecting: asyncio.Future[None]) -> None:
        assert self.id is not None
        reason = "its container stopped" if connecting.cancelled() else "it did not answer in time"
        logs = (await self._runtime.logs(self.id)).strip()
        message = f"The kernel of sandbox {self.sandbox_id} did not start: {reason}."
        if logs:
            message += f" Its last output:\n{logs}"
        raise SandboxStartError(message, self.sandbox_id)
