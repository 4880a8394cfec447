"""Expiry, adoption after a restart or a crash, and cleanup: no container outlives its manager's say."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import docker
import pytest

from sandbox import (
    DataDirInUse,
    ManagerClosed,
    SandboxExpired,
    SandboxManager,
    SandboxNotFound,
    SandboxSpec,
)

from .conftest import config_for, labelled, until


def _containers(client: docker.DockerClient, data_dir: Path) -> list[str]:
    return [c["Id"] for c in labelled(client, f"kernelgate.data_dir={data_dir}")]


async def test_idle_sandbox_expires_and_is_removed(data_dir: Path, docker_client: docker.DockerClient) -> None:
    """Past its idle timeout the reaper removes container and files; the id then reads as expired."""
    async with SandboxManager(config_for(data_dir, reap_interval=0.2)) as manager:
        sandbox = await manager.create(SandboxSpec(memory_limit="256m", idle_timeout=1))
        files = sandbox.data_dir
        assert _containers(docker_client, data_dir)
        for _ in range(50):
            await asyncio.sleep(0.2)
            # The files go after the container, in a thread: wait for both.
            if sandbox not in manager.sandboxes() and not _containers(docker_client, data_dir) and not files.exists():
                break
        with pytest.raises(SandboxExpired):
            manager.get(sandbox.id)
        with pytest.raises(SandboxExpired):
            await sandbox.execute("1")
        assert _containers(docker_client, data_dir) == []
        assert not files.exists()


async def test_activity_postpones_expiry(data_dir: Path) -> None:
    """Each operation pushes the expiry back by the idle timeout."""
    async with SandboxManager(config_for(data_dir)) as manager:
        sandbox = await manager.create(SandboxSpec(memory_limit="256m", idle_timeout=60))
        first = sandbox.expires_at
        await asyncio.sleep(0.05)
        await sandbox.list_files()
        assert sandbox.expires_at > first
        sandbox.last_active -= 120  # as if idle for two minutes
        assert await manager.reap() == [sandbox.id]


async def test_busy_sandbox_is_not_reaped(data_dir: Path) -> None:
    """A sandbox running a long execution does not expire under it."""
    async with SandboxManager(config_for(data_dir)) as manager:
        sandbox = await manager.create(SandboxSpec(memory_limit="256m", idle_timeout=60))
        running = asyncio.ensure_future(sandbox.execute("import time; time.sleep(1)"))
        await until(lambda: sandbox.busy)
        sandbox.last_active -= 120
        assert await manager.reap() == []
        assert (await running).status.value == "ok"


def _running(client: docker.DockerClient, data_dir: Path) -> list[bool]:
    return [c["State"] == "running" for c in labelled(client, f"kernelgate.data_dir={data_dir}")]


async def test_a_sandbox_left_behind_stops_itself_past_its_expiry(
    data_dir: Path, docker_client: docker.DockerClient
) -> None:
    """With no manager left to remove it, a sandbox past its expiry stops its kernel; the next manager removes it."""
    config = config_for(data_dir, self_stop_grace=1, self_stop_check=0.5)
    first = SandboxManager(config)
    await first.start()
    await first.create(SandboxSpec(memory_limit="256m", idle_timeout=2))
    await first.close(remove_sandboxes=False)  # as a gateway stopped for good, or one that crashed
    assert _running(docker_client, data_dir) == [True]
    for _ in range(40):
        await asyncio.sleep(0.5)
        if _running(docker_client, data_dir) == [False]:
            break
    assert _running(docker_client, data_dir) == [False]
    async with SandboxManager(config) as second:
        assert second.sandboxes() == []
    assert _containers(docker_client, data_dir) == []


async def test_a_sandbox_with_its_manager_does_not_stop_itself(data_dir: Path) -> None:
    """While a manager runs, its sandbox outlives its own deadline check: a long execution and idle time after it."""
    config = config_for(data_dir, self_stop_grace=1, self_stop_check=0.5, reap_interval=0.2)
    async with SandboxManager(config) as manager:
        sandbox = await manager.create(SandboxSpec(memory_limit="256m", idle_timeout=3))
        execution = await sandbox.execute("import time; time.sleep(6); print('slept')")
        assert (execution.status.value, execution.stdout) == ("ok", "slept\n")
        await asyncio.sleep(2)
        assert (await sandbox.execute("1 + 1")).status.value == "ok"


async def test_a_new_manager_adopts_live_sandboxes(data_dir: Path) -> None:
    """Closed with remove_sandboxes=False, the sandboxes carry on under the next manager, state and all."""
    first = SandboxManager(config_for(data_dir))
    await first.start()
    sandbox = await first.create(SandboxSpec(memory_limit="256m", labels={"owner": "test"}))
    await sandbox.execute("survivor = 'still here'")
    await first.close(remove_sandboxes=False)

    async with SandboxManager(config_for(data_dir)) as second:
        adopted = second.get(sandbox.id)
        assert adopted.spec.memory_limit == "256m"
        assert adopted.spec.labels == {"owner": "test"}
        execution = await adopted.execute("survivor")
        assert execution.result is not None
        assert execution.result.text == "'still here'"


async def test_sandboxes_of_a_crashed_process_are_adopted(data_dir: Path) -> None:
    """A process killed without cleanup leaves sandboxes that the next manager reconnects to."""
    script = textwrap.dedent(
        f"""
        import asyncio, os
        from pathlib import Path
        from sandbox import SandboxConfig, SandboxManager, SandboxSpec
        async def main():
            manager = SandboxManager(SandboxConfig(data_dir=Path({str(data_dir)!r})))
            await manager.start()
            sandbox = await manager.create(SandboxSpec(memory_limit="256m"))
            await sandbox.execute("value = 6 * 7")
            print(sandbox.id, flush=True)
            os._exit(0)  # a crash: no close, no cleanup
        asyncio.run(main())
        """
    )
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    sandbox_id = done.stdout.strip()
    assert sandbox_id.startswith("sbx_"), done.stderr
    async with SandboxManager(config_for(data_dir)) as manager:
        execution = await manager.get(sandbox_id).execute("value")
        assert execution.result is not None
        assert execution.result.text == "42"


async def test_adopt_false_removes_what_an_earlier_manager_left(
    data_dir: Path, docker_client: docker.DockerClient
) -> None:
    """With adopt=False a new manager removes the leftovers instead of reconnecting."""
    first = SandboxManager(config_for(data_dir))
    await first.start()
    sandbox = await first.create(SandboxSpec(memory_limit="256m"))
    await first.close(remove_sandboxes=False)
    assert _containers(docker_client, data_dir)
    async with SandboxManager(config_for(data_dir, adopt=False)) as second:
        assert _containers(docker_client, data_dir) == []
        with pytest.raises(SandboxNotFound):
            second.get(sandbox.id)


async def test_expired_leftovers_are_removed_not_adopted(data_dir: Path, docker_client: docker.DockerClient) -> None:
    """Expiry keeps counting while no manager runs: a sandbox idle past it is removed on adoption."""
    first = SandboxManager(config_for(data_dir))
    await first.start()
    sandbox = await first.create(SandboxSpec(memory_limit="256m", idle_timeout=60))
    sandbox.last_active -= 120
    await first.close(remove_sandboxes=False)
    async with SandboxManager(config_for(data_dir)) as second:
        with pytest.raises(SandboxExpired):
            second.get(sandbox.id)
        assert _containers(docker_client, data_dir) == []


def _delete_by_hand(directory: Path) -> None:
    """What a user must do to delete a data directory: unmount the sandboxes' disks in it, then rm -rf."""
    with open("/proc/mounts") as mounts:
        inside = [line.split()[1] for line in mounts if line.split()[1].startswith(f"{directory}/")]
    for mountpoint in inside:
        subprocess.run(["umount", mountpoint], check=True)
    shutil.rmtree(directory)


async def test_containers_whose_data_dir_is_gone_are_removed(
    test_root: Path, data_dir: Path, docker_client: docker.DockerClient
) -> None:
    """A leftover pointing at a deleted data directory can never be adopted, so any manager removes it."""
    doomed = test_root / "doomed"
    first = SandboxManager(config_for(doomed))
    await first.start()
    await first.create(SandboxSpec(memory_limit="256m"))
    await first.close(remove_sandboxes=False)
    await asyncio.to_thread(_delete_by_hand, doomed)
    assert _containers(docker_client, doomed)
    async with SandboxManager(config_for(data_dir)):
        assert _containers(docker_client, doomed) == []


async def test_close_removes_every_sandbox(data_dir: Path, docker_client: docker.DockerClient) -> None:
    """Closing the manager removes all its containers and files, and later use is refused."""
    manager = SandboxManager(config_for(data_dir))
    await manager.start()
    sandboxes = await asyncio.gather(*(manager.create(SandboxSpec(memory_limit="256m")) for _ in range(3)))
    assert len(_containers(docker_client, data_dir)) == 3
    await manager.close()
    assert _containers(docker_client, data_dir) == []
    assert not any(sb.data_dir.exists() for sb in sandboxes)
    with pytest.raises(ManagerClosed):
        await manager.create()
    with pytest.raises(SandboxNotFound):
        await sandboxes[0].execute("1")


async def test_remove_deletes_the_container(manager: SandboxManager, docker_client: docker.DockerClient) -> None:
    """remove() deletes the container at once; the id is then not found."""
    sandbox = await manager.create(SandboxSpec(memory_limit="256m"))
    assert sandbox.container_id is not None
    await manager.remove(sandbox.id)
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(sandbox.container_id)
    with pytest.raises(SandboxNotFound):
        manager.get(sandbox.id)


async def test_cancelled_create_leaves_nothing(data_dir: Path, docker_client: docker.DockerClient) -> None:
    """A caller that gives up mid-start does not leak the container being started."""
    async with SandboxManager(config_for(data_dir)) as manager:
        creating = asyncio.ensure_future(manager.create(SandboxSpec(memory_limit="256m")))
        while not _containers(docker_client, data_dir):  # cancelled once Docker has the container
            assert not creating.done(), "the sandbox started before its container could be seen"
            await asyncio.sleep(0.01)
        creating.cancel()
        with pytest.raises(asyncio.CancelledError):
            await creating
        for _ in range(100):
            if not manager.sandboxes() and not _containers(docker_client, data_dir):
                break
            await asyncio.sleep(0.1)
        assert _containers(docker_client, data_dir) == []


async def test_a_data_dir_has_one_manager_at_a_time(data_dir: Path) -> None:
    """A second live manager on the same data directory is refused: it would take the first one's sandboxes."""
    async with SandboxManager(config_for(data_dir)):
        with pytest.raises(DataDirInUse) as caught:
            await SandboxManager(config_for(data_dir)).start()
        assert "KERNELGATE_DATA_DIR" in str(caught.value)


async def test_missing_image_is_a_clear_error(data_dir: Path) -> None:
    """Creating with an image that is not there says to build it, and leaves nothing behind."""
    from sandbox import ImageNotFound

    async with SandboxManager(config_for(data_dir, image="kernelgate/kernel:missing")) as manager:
        with pytest.raises(ImageNotFound) as caught:
            await manager.create()
        assert "make image" in str(caught.value)
        assert manager.sandboxes() == []


async def test_a_container_removed_while_a_manager_starts_is_skipped(
    data_dir: Path, docker_client: docker.DockerClient
) -> None:
    """Listing leftovers while another process removes containers does not fail the start."""
    from sandbox.backends.docker import DockerBackend

    runtime = DockerBackend(None)
    first = SandboxManager(config_for(data_dir))
    await first.start()
    sandbox = await first.create(SandboxSpec(memory_limit="256m"))
    assert sandbox.container_id is not None
    original = docker_client.api.inspect_container

    def remove_then_inspect(container_id: Any) -> Any:
        docker_client.api.remove_container(container_id, force=True)  # gone between list and inspect
        return original(container_id)

    client = runtime._docker()
    client.api.inspect_container = remove_then_inspect  # type: ignore[method-assign,assignment]  # a race, staged
    try:
        assert await runtime.list_managed(f"kernelgate.data_dir={data_dir}") == []
    finally:
        runtime.close()
        await first.close()
