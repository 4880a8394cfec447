"""The one module that imports `docker`: containers in, our types out, docker's errors mapped to ours.

docker-py is blocking; every call runs on this module's own thread pool so that a slow engine never
starves the event loop's default executor.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import docker
import docker.errors
import requests.exceptions
from docker.types import LogConfig, Mount, Ulimit

from ..._backend import ContainerEvent, ContainerGone, ContainerInfo, ContainerSpec, HostInfo
from ..._errors import DockerUnavailable, ImageNotFound, SandboxError
from ..._kernel import CONTAINER_CONTROL_DIR, CONTAINER_RUN_DIR
from ..._labels import MANAGED_LABEL
from ._box import KernelContainer, reweighable

__all__ = ["DockerBackend", "EventWatch"]

log = logging.getLogger("kernelgate.sandbox")
P = ParamSpec("P")
T = TypeVar("T")

_DEFAULT_HOST = "unix:///var/run/docker.sock"


class EventWatch:
    """A running subscription to Docker's container events."""

    def __init__(self, stream: Any, thread: threading.Thread) -> None:
        self._stream = stream
        self._thread = thread

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def close(self) -> None:
        self._stream.close()


@contextlib.contextmanager
def _map_errors(image: str | None = None) -> Iterator[None]:
    try:
        yield
    except docker.errors.ImageNotFound as exc:
        raise ImageNotFound(image or "?") from exc
    except docker.errors.NotFound as exc:
        raise ContainerGone(str(exc)) from exc
    except (requests.exceptions.ConnectionError, docker.errors.DockerException) as exc:
        if isinstance(exc, docker.errors.APIError):
            msg = f"Docker refused the request: {exc.explanation or exc}"
            raise SandboxError(msg) from exc
        msg = f"Cannot reach the Docker engine ({exc}). Start Docker, or set DOCKER_HOST to where it listens."
        raise DockerUnavailable(msg) from exc


class DockerBackend:
    """The Docker engine as a sandbox backend: an async facade over it, and each sandbox's container."""

    def __init__(self, docker_host: str | None) -> None:
        self._host = docker_host
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="kernelgate-docker")
        self._client: docker.DockerClient | None = None
        self._client_lock = threading.Lock()

    def _docker(self) -> docker.DockerClient:
        with self._client_lock:
            if self._client is None:
                url = self._host or _DEFAULT_HOST
                _probe_unix_socket(url)
                with _map_errors():
                    self._client = docker.DockerClient(base_url=url)
            return self._client

    async def _call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    async def version(self) -> str:
        def ping() -> str:
            with _map_errors():
                return str(self._docker().version().get("Version", "unknown"))

        return await self._call(ping)

    async def host(self) -> HostInfo:
        """The engine's host (which may not be this one): its memory and the runtimes registered."""

        def info() -> HostInfo:
            with _map_errors():
                raw = self._docker().info()
            runtimes = tuple(sorted(raw.get("Runtimes") or {}))
            return HostInfo(memory=int(raw.get("MemTotal", 0)), runtimes=runtimes)

        return await self._call(info)

    def available_memory(self) -> int | None:
        """MemAvailable of this host, when the engine runs here (on a unix socket); else None."""
        if not (self._host or _DEFAULT_HOST).startswith(("unix://", "http+unix://")):
            return None
        try:
            with open("/proc/meminfo", "rb") as meminfo:
                for line in meminfo:
                    if line.startswith(b"MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            pass
        return None

    async def set_cpu_shares(self, container_id: str, shares: int) -> None:
        def update() -> None:
            with _map_errors():
                self._docker().api.update_container(container_id, cpu_shares=shares)

        await self._call(update)

    async def image_id(self, image: str) -> str | None:
        def inspect() -> str | None:
            with _map_errors(image):
                try:
                    return str(self._docker().images.get(image).id)
                except docker.errors.ImageNotFound:
                    return None

        return await self._call(inspect)

    async def run(self, spec: ContainerSpec, run_dir: Path, control_dir: Path) -> str:
        return await self._call(self._run, spec, run_dir, control_dir)

    def _run(self, spec: ContainerSpec, run_dir: Path, control_dir: Path) -> str:
        """Create and start the container (two API calls: the high-level `run` adds a third).

        The sandbox's three host directories are bind-mounted where the image expects them: its files
        at /mnt/data, the kernel's sockets (read-write) and its connection file (read-only)."""
        api = self._docker().api
        with _map_errors(spec.image):
            host_config = api.create_host_config(
                init=True,
                runtime=spec.runtime,
                network_mode="bridge" if spec.network else "none",
                mem_limit=spec.memory_bytes,
                memswap_limit=spec.memory_bytes,
                nano_cpus=int(spec.cpus * 1e9),
                cpu_shares=spec.cpu_weight if reweighable(spec.runtime) else None,
                pids_limit=spec.pids_limit,
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                read_only=True,
                tmpfs={"/tmp": f"rw,nosuid,nodev,size={spec.tmpfs_bytes}"},
                # The kernel echoes what its code writes to fd 1 and 2 into the container's log: keep one
                # small file of it (for start-up failures), never a log that fills /var/lib/docker.
                log_config=LogConfig(type="json-file", config={"max-size": "1m", "max-file": "1"}),
                ulimits=[Ulimit(name="core", soft=0, hard=0), Ulimit(name="nofile", soft=4096, hard=4096)],
                mounts=[
                    Mount("/mnt/data", str(spec.data_dir), type="bind"),
                    Mount(CONTAINER_RUN_DIR, str(run_dir), type="bind"),
                    Mount(CONTAINER_CONTROL_DIR, str(control_dir), type="bind", read_only=True),
                ],
            )
            created = api.create_container(
                spec.image,
                name=spec.name,
                labels={MANAGED_LABEL: "true", **spec.labels},
                user=spec.user,
                # docker-init (tini) hands the interrupt to the kernel's whole process group, as Ctrl-C in a
                # terminal: the code's subprocesses stop with it (the watchdog has a group of its own).
                environment={**spec.environment, "TINI_KILL_PROCESS_GROUP": "1"},
                hostname="sandbox",
                working_dir="/mnt/data",
                host_config=host_config,
            )
            container_id = str(created["Id"])
            try:
                api.start(container_id)
            except BaseException:
                with contextlib.suppress(docker.errors.DockerException):
                    api.remove_container(container_id, force=True)
                raise
        return container_id

    async def start(self, container_id: str) -> None:
        def start() -> None:
            with _map_errors():
                self._docker().api.start(container_id)

        await self._call(start)

    async def kill(self, container_id: str, signal: str = "SIGKILL") -> None:
        """Send a signal to the container's init, which forwards it to the kernel."""

        def kill() -> None:
            with _map_errors():
                try:
                    self._docker().api.kill(container_id, signal=signal)
                except docker.errors.APIError as exc:
                    if exc.status_code != 409:  # 409: not running, which is what we wanted
                        raise

        await self._call(kill)

    async def logs(self, container_id: str, tail: int = 20) -> str:
        def logs() -> str:
            with contextlib.suppress(ContainerGone), _map_errors():
                raw = self._docker().api.logs(container_id, tail=tail)
                return raw.decode(errors="replace") if isinstance(raw, bytes) else ""
            return ""

        return await self._call(logs)

    async def wait_stopped(self, container_id: str, timeout: float) -> None:
        def wait() -> None:
            with _map_errors(), contextlib.suppress(requests.exceptions.ReadTimeout):
                self._docker().api.wait(container_id, timeout=math.ceil(timeout))

        await self._call(wait)

    async def remove(self, container_id: str) -> None:
        """Remove a container whatever its state; one already gone is not an error."""

        def remove() -> None:
            with contextlib.suppress(ContainerGone), _map_errors():
                try:
                    self._docker().api.remove_container(container_id, force=True, v=True)
                except docker.errors.APIError as exc:
                    if exc.status_code != 409:  # 409: a removal is already in progress
                        raise

        await self._call(remove)

    async def inspect(self, container_id: str) -> ContainerInfo:
        def inspect() -> ContainerInfo:
            with _map_errors():
                return _info(self._docker().api.inspect_container(container_id))

        return await self._call(inspect)

    async def list_managed(self, label: str) -> list[ContainerInfo]:
        """Every container, running or not, carrying the managed label and `label` (`key=value`)."""

        def listing() -> list[ContainerInfo]:
            with _map_errors():
                api = self._docker().api
                found = api.containers(all=True, filters={"label": [f"{MANAGED_LABEL}=true", label]})
                infos = []
                for summary in found:
                    # Removed between the listing and its inspection (by its own manager, say): skip it.
                    with contextlib.suppress(docker.errors.NotFound):
                        infos.append(_info(api.inspect_container(summary["Id"])))
                return infos

        return await self._call(listing)

    def oom_kills(self, container_id: str) -> int | None:
        """How many processes the OOM killer has killed in the container's cgroup, read from the host.

        A cheap file read (no Docker call). None when the cgroup is not visible here: the engine is
        remote, or the container has stopped.
        """
        for path in _cgroup_files(container_id, "memory.oom_control", "memory.events"):
            try:
                text = path.read_text()
            except OSError:
                continue
            for line in text.splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        return None

    def memory_used(self, container_id: str) -> int | None:
        """Bytes of memory the container's cgroup uses now (what its limit counts), read from the host;
        None when the cgroup is not visible here (a remote engine, a stopped container)."""
        for path in _cgroup_files(container_id, "memory.usage_in_bytes", "memory.current"):
            try:
                return int(path.read_text())
            except (OSError, ValueError):
                continue
        return None

    async def watch(self, label: str, on_event: Callable[[ContainerEvent], None]) -> EventWatch:
        """Call `on_event` from a background thread for each die or oom of a container with `label`."""

        def subscribe() -> Any:
            with _map_errors():
                return self._docker().events(
                    decode=True,
                    filters={"type": "container", "event": ["die", "oom"], "label": [label]},
                )

        stream = await self._call(subscribe)

        def pump() -> None:
            try:
                for raw in stream:
                    on_event(ContainerEvent(container_id=raw["id"], action=raw["Action"]))
            except Exception:
                log.debug("docker event stream ended", exc_info=True)

        thread = threading.Thread(target=pump, name="kernelgate-docker-events", daemon=True)
        thread.start()
        return EventWatch(stream, thread)

    def box(
        self, sandbox_id: str, control_dir: Path, run_dir: Path, start_timeout: float, max_message_bytes: int
    ) -> KernelContainer:
        return KernelContainer(sandbox_id, control_dir, run_dir, self, start_timeout, max_message_bytes)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._client is not None:
            self._client.close()


def _cgroup_files(container_id: str, v1: str, v2: str) -> tuple[Path, ...]:
    """Where a file of the container's memory cgroup lives: v1 with cgroupfs or systemd, then v2."""
    root = Path("/sys/fs/cgroup")
    return (
        root / "memory" / "docker" / container_id / v1,
        root / "memory" / "system.slice" / f"docker-{container_id}.scope" / v1,
        root / "docker" / container_id / v2,
        root / "system.slice" / f"docker-{container_id}.scope" / v2,
    )


def _probe_unix_socket(url: str) -> None:
    """Fail clearly when a unix socket has no engine behind it (docker-py would also leak its socket)."""
    if not url.startswith(("unix://", "http+unix://")):
        return
    path = url.split("://", 1)[1]
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(5)
        try:
            probe.connect(path)
        except OSError as exc:
            msg = (
                f"Cannot reach the Docker engine at {url} ({exc.strerror or exc}). "
                "Start Docker, or set DOCKER_HOST to where it listens."
            )
            raise DockerUnavailable(msg) from exc


def _info(raw: dict[str, Any]) -> ContainerInfo:
    state = raw["State"]
    return ContainerInfo(
        id=raw["Id"],
        labels=dict(raw["Config"]["Labels"] or {}),
        running=bool(state["Running"]),
        exit_code=int(state.get("ExitCode", 0)),
        oom_killed=bool(state.get("OOMKilled", False)),
        runtime=raw.get("HostConfig", {}).get("Runtime") or None,
    )
