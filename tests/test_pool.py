"""The warm pool against real Docker: claims, refills, never a second hand-out, restarts, memory pressure."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import docker
import openai
import pytest

from gateway import Settings, SettingsError
from sandbox import ImageNotFound, Sandbox, SandboxManager, SandboxNotFound, SandboxSpec, labels_of
from sandbox.backends.docker import DockerBackend

from .conftest import IMAGE, RUNTIME, config_for, container_of, labelled, until, wait_for_pool

TIER = "256m"


def _pooled(client: docker.DockerClient, data_dir: Path) -> dict[str, dict[str, Any]]:
    """The data directory's containers that Docker labels as the pool's, by sandbox id."""
    found = labelled(client, f"kernelgate.data_dir={data_dir}")
    return {c["Labels"]["kernelgate.sandbox_id"]: c for c in found if c["Labels"].get("kernelgate.pool") == "true"}


def _unclaimed(client: docker.DockerClient, data_dir: Path) -> set[str]:
    return {sid for sid, c in _pooled(client, data_dir).items() if labels_of(c["Labels"]) == c["Labels"]}


async def _full(manager: SandboxManager, size: int, tier: str = TIER) -> None:
    await until(lambda: manager.pool_sizes().get(tier) == size, timeout=120)


async def test_a_claim_is_a_warm_kernel_bound_to_the_callers_spec(
    data_dir: Path, docker_client: docker.DockerClient
) -> None:
    """The pool's sandbox is not listed until claimed; then it is the caller's: its limits, lifetime, labels
    and files, a fresh namespace and execution count, and the warm imports already loaded."""
    async with SandboxManager(config_for(data_dir, pool={TIER: 1})) as manager:
        await _full(manager, 1)
        assert manager.sandboxes() == []
        (pooled_id,) = _unclaimed(docker_client, data_dir)
        spec = SandboxSpec(memory_limit=TIER, idle_timeout=123, files={"in.txt": b"given"}, labels={"owner": "t"})
        sandbox = await manager.create(spec)
        assert sandbox.id == pooled_id
        assert manager.sandboxes() == [sandbox]
        assert abs(sandbox.expires_at - (time.time() + 123)) < 5
        execution = await sandbox.execute(
            "import sys\nprint(open('in.txt').read(), 'pd' in dir(), 'plt' in dir(), "
            "{'numpy', 'pandas', 'matplotlib.pyplot'} <= set(sys.modules))"
        )
        assert execution.stdout == "given False False True\n", execution
        assert execution.execution_count == 1
        figure = await sandbox.execute("import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()")
        assert [output.type for output in figure.outputs] == ["display"], figure

        assert sandbox.container_id is not None
        container_id = sandbox.container_id
        container = docker_client.containers.get(container_id)
        assert container.attrs["HostConfig"]["Memory"] == 256 * 1024**2
        claimed = labels_of(container.labels)
        assert claimed == sandbox.labels
        assert claimed["kernelgate.label.owner"] == "t"
        assert claimed["kernelgate.idle_timeout"] == "123.0"
        # Claimed, it runs at a live sandbox's CPU weight; the pool makes a new sandbox behind it.
        await until(lambda: docker_client.api.inspect_container(container_id)["HostConfig"]["CpuShares"] == 1024)
        await _full(manager, 1)
        assert _unclaimed(docker_client, data_dir) - {pooled_id}


async def test_a_pooled_sandbox_is_never_handed_out_twice(data_dir: Path, docker_client: docker.DockerClient) -> None:
    """Concurrent creates each get their own sandbox; a removed one never comes back; what the pool
    cannot serve (another limit, a network) starts cold."""
    async with SandboxManager(config_for(data_dir, pool={TIER: 2})) as manager:
        await _full(manager, 2)
        first_pool = _unclaimed(docker_client, data_dir)
        made = await asyncio.gather(*(manager.create(SandboxSpec(memory_limit=TIER)) for _ in range(3)))
        ids = [sandbox.id for sandbox in made]
        assert len(set(ids)) == 3
        assert len(first_pool & set(ids)) == 2  # the third found the pool empty
        other = await manager.create(SandboxSpec(memory_limit="512m"))
        networked = await manager.create(SandboxSpec(memory_limit=TIER, network=True))
        assert not {other.id, networked.id} & _pooled(docker_client, data_dir).keys()
        for sandbox in made:
            await manager.remove(sandbox.id)
        await _full(manager, 2)
        assert not _unclaimed(docker_client, data_dir) & set(ids)
        again = await manager.create(SandboxSpec(memory_limit=TIER))
        assert again.id not in ids


async def test_warm_imports_are_configurable(data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Only the listed modules are loaded; one that cannot be imported is logged, and the pool still serves."""
    config = config_for(data_dir, pool={TIER: 1}, warm_imports=("json", "no_such_module"))
    async with SandboxManager(config) as manager:
        await _full(manager, 1)
        sandbox = await manager.create(SandboxSpec(memory_limit=TIER))
        execution = await sandbox.execute("import sys\nprint('json' in sys.modules, 'pandas' in sys.modules)")
        assert execution.stdout == "True False\n", execution
    assert "No module named 'no_such_module'" in caplog.text


async def test_refills_wait_for_running_executions(data_dir: Path) -> None:
    """While as many executions run as the host has CPUs, the pool makes nothing; then it refills."""
    cpus = os.cpu_count() or 1
    async with SandboxManager(config_for(data_dir, pool={TIER: 1})) as manager:
        await _full(manager, 1)
        busy = await asyncio.gather(*(manager.create(SandboxSpec(memory_limit="128m")) for _ in range(cpus)))
        release = "/mnt/data/go"
        wait = f"import os, time\nwhile not os.path.exists({release!r}):\n    time.sleep(0.05)"
        running = [asyncio.ensure_future(sandbox.execute(wait, timeout=120)) for sandbox in busy]
        await until(lambda: all(sandbox.busy for sandbox in busy))
        await manager.create(SandboxSpec(memory_limit=TIER))  # the pool's one
        await asyncio.sleep(2.5)  # long enough to make a pooled sandbox, were the pool not waiting
        assert manager.pool_sizes() == {TIER: 0}
        for sandbox in busy:
            await sandbox.write_file("go", b"")
        await asyncio.gather(*running)
        await _full(manager, 1)


class _ShortOfMemory(DockerBackend):
    """Docker, with the host's available memory as the test says (the seam the pool reads it through)."""

    available: int | None = None

    def available_memory(self) -> int | None:
        return self.available if self.available is not None else super().available_memory()


async def test_the_pool_gives_way_when_the_host_is_short_of_memory(data_dir: Path) -> None:
    """Below the reserve the pool gives back its sandboxes one per reaper pass and makes none; live
    sandboxes are untouched and creates still work; with memory back it refills."""
    backend = _ShortOfMemory(None)
    config = config_for(data_dir, pool={TIER: 2}, reap_interval=0.2)
    async with SandboxManager(config, backend=backend) as manager:
        await _full(manager, 2)
        live = await manager.create(SandboxSpec(memory_limit=TIER))
        backend.available = 0
        await _full(manager, 0)
        cold = await manager.create(SandboxSpec(memory_limit=TIER))
        assert {sb.id for sb in manager.sandboxes()} == {live.id, cold.id}
        assert (await live.execute("print(1)")).stdout == "1\n"
        backend.available = None
        await _full(manager, 2)


async def test_the_pool_survives_a_restart(data_dir: Path, docker_client: docker.DockerClient) -> None:
    """A restarted manager adopts its claimed sandbox (with its claim) and the ready pool; a pooled sandbox
    without its ready mark is removed; with adopt=False everything goes."""
    first = SandboxManager(config_for(data_dir, pool={TIER: 2}))
    await first.start()
    await _full(first, 2)
    claimed = await first.create(SandboxSpec(memory_limit=TIER, idle_timeout=321, labels={"owner": "t"}))
    await claimed.execute("value = 6 * 7")
    await _full(first, 2)
    await first.close(remove_sandboxes=False)
    pool = _unclaimed(docker_client, data_dir)
    assert len(pool) == 2
    unready = sorted(pool)[0]
    (data_dir / "sandboxes" / unready / ".pool-ready").unlink()  # as if it was still booting at a crash

    async with SandboxManager(config_for(data_dir, pool={TIER: 2})) as second:
        assert second.recovery.adopted == (claimed.id,)
        assert set(second.recovery.pool_adopted) == pool - {unready}
        assert second.recovery.pool_removed == (unready,)
        assert [sb.id for sb in second.sandboxes()] == [claimed.id]
        adopted = second.get(claimed.id)
        assert adopted.spec.idle_timeout == 321
        assert adopted.spec.labels == {"owner": "t"}
        assert (await adopted.execute("value")).result.text == "42"  # type: ignore[union-attr]
        await _full(second, 2)
        await second.close(remove_sandboxes=False)

    async with SandboxManager(config_for(data_dir, adopt=False)) as third:
        assert third.recovery.removed == (claimed.id,)
        assert len(third.recovery.pool_removed) == 2
        assert labelled(docker_client, f"kernelgate.data_dir={data_dir}") == []


async def test_a_crash_mid_refill_leaks_nothing(data_dir: Path, docker_client: docker.DockerClient) -> None:
    """A process killed while its pool refills leaves a claimed sandbox (adopted), ready ones (adopted up
    to the new pool's size) and maybe one half made (removed): the next manager keeps no more than that."""
    script = textwrap.dedent(
        f"""
        import asyncio, os
        from pathlib import Path
        from sandbox import SandboxConfig, SandboxManager, SandboxSpec
        async def main():
            config = SandboxConfig(
                data_dir=Path({str(data_dir)!r}), image={IMAGE!r}, runtime={RUNTIME!r}, pool={{"{TIER}": 2}}
            )
            manager = SandboxManager(config)
            await manager.start()
            while manager.pool_sizes()["{TIER}"] < 2:
                await asyncio.sleep(0.05)
            sandbox = await manager.create(SandboxSpec(memory_limit="{TIER}"))
            await sandbox.execute("value = 42")
            print(sandbox.id, flush=True)
            await asyncio.sleep(0.5)  # the refill is under way
            os._exit(0)
        asyncio.run(main())
        """
    )
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    claimed_id = done.stdout.strip()
    assert claimed_id.startswith("sbx_"), done.stderr
    async with SandboxManager(config_for(data_dir, pool={TIER: 1})) as manager:
        assert manager.recovery.adopted == (claimed_id,)
        assert len(manager.recovery.pool_adopted) == 1
        assert (await manager.get(claimed_id).execute("value")).result.text == "42"  # type: ignore[union-attr]
        await _full(manager, 1)
        held = {
            c["Labels"]["kernelgate.sandbox_id"] for c in labelled(docker_client, f"kernelgate.data_dir={data_dir}")
        }
        assert held == {claimed_id, *manager.recovery.pool_adopted}
        leftovers = {path.name for path in (data_dir / "sandboxes").iterdir()}
        assert leftovers == held


def test_pool_settings_read_from_the_environment(tmp_path: Path) -> None:
    env = {"KERNELGATE_DATA_DIR": str(tmp_path), "KERNELGATE_POOL": "1g=4, 4G=1", "KERNELGATE_WARM_IMPORTS": "numpy"}
    settings = Settings.from_env(env)
    assert settings.sandbox_config(pool=True).pool == {"1g": 4, "4g": 1}
    assert settings.sandbox_config().pool == {}  # one-off commands run no pool
    assert settings.warm_imports == ("numpy",)
    off = Settings.from_env({**env, "KERNELGATE_POOL": "0", "KERNELGATE_WARM_IMPORTS": "none"})
    assert off.sandbox_config(pool=True).pool == {}
    assert off.warm_imports == ()
    assert Settings(data_dir=tmp_path).pool == {"1g": 2}
    with pytest.raises(SettingsError, match="KERNELGATE_POOL"):
        Settings.from_env({**env, "KERNELGATE_POOL": "1g:4"}).sandbox_config(pool=True)
    with pytest.raises(SettingsError, match="KERNELGATE_POOL"):
        Settings.from_env({**env, "KERNELGATE_POOL": "lots=4"}).sandbox_config(pool=True)


async def test_a_sandbox_of_the_pool_is_not_reachable(data_dir: Path, docker_client: docker.DockerClient) -> None:
    """get() knows no pooled sandbox: nothing can run code in one before it is claimed."""
    async with SandboxManager(config_for(data_dir, pool={TIER: 1})) as manager:
        await _full(manager, 1)
        (pooled_id,) = _unclaimed(docker_client, data_dir)
        with pytest.raises(SandboxNotFound):
            manager.get(pooled_id)
        claimed: Sandbox = await manager.create(SandboxSpec(memory_limit=TIER))
        assert manager.get(pooled_id) is claimed


def test_the_gateway_hands_out_its_pool_as_containers(
    openai_base_url: str, client: openai.OpenAI, docker_client: docker.DockerClient
) -> None:
    """The shared gateway runs the default pool: /health counts it, and a new container is a claimed pool
    sandbox, known by its claim."""
    wait_for_pool(openai_base_url, timeout=120)
    made = client.containers.create(name="from-the-pool")
    container = container_of(docker_client, made.id)
    assert container is not None
    assert container.labels["kernelgate.pool"] == "true"  # Docker's labels are the pool's; the claim says whose
    assert labels_of(container.labels)["kernelgate.label.container_id"] == made.id
    assert made.id in {c.id for c in client.containers.list(limit=100)}
    client.containers.delete(made.id)


async def test_a_pool_that_cannot_make_sandboxes_says_why_and_leaks_nothing(
    data_dir: Path, docker_client: docker.DockerClient, caplog: pytest.LogCaptureFixture
) -> None:
    """With the image gone the pool logs the reason and retries later; creates fail as they would cold."""
    async with SandboxManager(config_for(data_dir, pool={TIER: 1}, image="kernelgate/kernel:missing")) as manager:
        await until(lambda: "could not make a 256m sandbox" in caplog.text)
        assert "kernelgate/kernel:missing" in caplog.text
        assert manager.pool_sizes() == {TIER: 0}
        with pytest.raises(ImageNotFound):
            await manager.create(SandboxSpec(memory_limit=TIER))
    assert labelled(docker_client, f"kernelgate.data_dir={data_dir}") == []
