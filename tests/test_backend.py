"""The backend contract: what any sandbox backend must do, run against each one this machine has.

Docker with its default runtime always; Docker with gVisor's runsc when it is registered. A new backend
(Kubernetes, a VM) joins by adding itself to BACKENDS and passing this module unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from sandbox import ExecutionStatus, Sandbox, SandboxManager, SandboxNotFound, SandboxSpec
from sandbox._backend import Backend, ContainerEvent
from sandbox.backends.docker import DockerBackend

from .conftest import config_for, until


@dataclass(frozen=True)
class Flavour:
    name: str
    make: Callable[[], Backend]
    runtime: str | None = None


def _registered(runtime: str) -> bool:
    client = docker.from_env()
    try:
        return runtime in (client.info().get("Runtimes") or {})
    finally:
        client.close()


BACKENDS = [
    Flavour("docker", lambda: DockerBackend(None)),
    pytest.param(
        Flavour("docker-runsc", lambda: DockerBackend(None), runtime="runsc"),
        marks=pytest.mark.skipif(not _registered("runsc"), reason="runsc is not registered (make gvisor)"),
    ),
]


@pytest.fixture(scope="module", params=BACKENDS, ids=lambda flavour: flavour.name)
def flavour(request: pytest.FixtureRequest) -> Flavour:
    found: Flavour = request.param
    return found


@pytest.fixture
async def backend(flavour: Flavour) -> AsyncIterator[Backend]:
    made = flavour.make()
    yield made
    made.close()


@pytest.fixture
async def manager(flavour: Flavour, data_dir: Path) -> AsyncIterator[SandboxManager]:
    config = config_for(data_dir, runtime=flavour.runtime, interrupt_grace=2.0)
    async with SandboxManager(config, backend=flavour.make()) as made:
        yield made


async def test_the_engine_answers_with_its_memory_and_the_image(backend: Backend) -> None:
    """version, the host's memory, and the image present or not."""
    assert await backend.version()
    assert (await backend.host()).memory > 0
    assert await backend.image_id(config_for(Path("/tmp")).image) is not None
    assert await backend.image_id("kernelgate/kernel:no-such-tag") is None


async def test_a_pooled_box_is_warmed_then_claimed_at_full_weight(flavour: Flavour, data_dir: Path) -> None:
    """available_memory, and a box started at a low CPU weight (the warm pool's) that set_cpu_weight raises:
    what the pool needs of a backend."""
    backend = flavour.make()
    available = backend.available_memory()
    assert available is None or available > 0
    config = config_for(data_dir, runtime=flavour.runtime, pool={"256m": 1}, warm_imports=("json",))
    async with SandboxManager(config, backend=backend) as manager:
        await until(lambda: manager.pool_sizes() == {"256m": 1}, timeout=60)
        sandbox = await manager.create(SandboxSpec(memory_limit="256m"))
        assert (await sandbox.execute("import sys\nprint('json' in sys.modules)")).stdout == "True\n"
        # Raised to a live sandbox's weight once claimed (runsc cannot change it, so never lowers it: 0
        # is Docker's default, which is 1024).
        await until(lambda: _cpu_shares(sandbox) in (0, 1024))


def _cpu_shares(sandbox: Sandbox) -> int:
    client = docker.from_env()
    try:
        shares: int = client.api.inspect_container(sandbox.container_id or "")["HostConfig"]["CpuShares"]
        return shares
    finally:
        client.close()


async def test_a_started_box_runs_code_and_is_listed_by_its_labels(manager: SandboxManager, data_dir: Path) -> None:
    """start: the kernel answers; list_managed finds the container by the data directory's label."""
    sandbox = await manager.create(SandboxSpec(memory_limit="256m"))
    assert (await sandbox.execute("6 * 7")).stdout == ""
    assert (await sandbox.execute("print(6 * 7)")).stdout == "42\n"
    listed = await manager._runtime.list_managed(f"kernelgate.data_dir={data_dir}")
    assert [info.labels["kernelgate.sandbox_id"] for info in listed] == [sandbox.id]
    assert listed[0].running


async def test_interrupt_reaches_the_code(manager: SandboxManager) -> None:
    """interrupt: a KeyboardInterrupt in the running code, the kernel and its variables kept."""
    sandbox = await manager.create(SandboxSpec(memory_limit="256m"))
    execution = await sandbox.execute("kept = 1\nimport time\ntime.sleep(60)", timeout=1)
    assert (execution.status, execution.state_kept) == (ExecutionStatus.TIMEOUT, True)
    assert (await sandbox.execute("print(kept)")).stdout == "1\n"


async def test_a_death_is_told_from_an_oom_kill_and_the_box_restarts(manager: SandboxManager) -> None:
    """death: an exit code is kernel_died with that code; past the memory limit is out_of_memory; both restart."""
    sandbox = await manager.create(SandboxSpec(memory_limit="256m", files={"kept.txt": b"x"}))
    died = await sandbox.execute("import os\nos._exit(5)", timeout=30)
    assert died.status is ExecutionStatus.KERNEL_DIED
    assert "exit code 5" in str(died.message)
    hog = await sandbox.execute("x = bytearray(600 * 1024 * 1024)", timeout=60)
    assert hog.status is ExecutionStatus.OUT_OF_MEMORY
    after = await sandbox.execute("print(open('kept.txt').read())", timeout=30)
    assert after.stdout == "x\n"


async def test_restart_gives_a_fresh_kernel_and_keeps_files(manager: SandboxManager) -> None:
    """restart: variables gone, /mnt/data kept."""
    sandbox = await manager.create(SandboxSpec(memory_limit="256m"))
    await sandbox.execute("gone = 1\nopen('kept.txt', 'w').write('x')")
    await sandbox.restart()
    assert (await sandbox.execute("print('gone' in globals(), open('kept.txt').read())")).stdout == "False x\n"


async def test_watch_reports_a_death(backend: Backend, manager: SandboxManager, data_dir: Path) -> None:
    """watch: a `die` event for a container of the label, as the kernel dies."""
    events: list[ContainerEvent] = []
    watch = await backend.watch(f"kernelgate.data_dir={data_dir}", events.append)
    try:
        sandbox = await manager.create(SandboxSpec(memory_limit="256m"))
        await sandbox.execute("import os\nos._exit(3)", timeout=30)
        await until(lambda: any(event.action == "die" for event in events))
        assert {event.container_id for event in events} == {sandbox.container_id}
    finally:
        watch.close()


async def test_a_new_manager_adopts_the_box(flavour: Flavour, data_dir: Path) -> None:
    """adopt: a live container is reconnected to by the next manager, its state kept."""
    config = config_for(data_dir, runtime=flavour.runtime)
    first = SandboxManager(config, backend=flavour.make())
    await first.start()
    sandbox: Sandbox = await first.create(SandboxSpec(memory_limit="256m"))
    await sandbox.execute("kept = 'yes'")
    await first.close(remove_sandboxes=False)
    async with SandboxManager(config, backend=flavour.make()) as second:
        assert (await second.get(sandbox.id).execute("print(kept)")).stdout == "yes\n"


async def test_remove_leaves_nothing(manager: SandboxManager, data_dir: Path) -> None:
    """remove: the container is gone from the backend's listing and the sandbox from the manager."""
    sandbox = await manager.create(SandboxSpec(memory_limit="256m"))
    await manager.remove(sandbox.id)
    assert await manager._runtime.list_managed(f"kernelgate.data_dir={data_dir}") == []
    with pytest.raises(SandboxNotFound):
        manager.get(sandbox.id)
