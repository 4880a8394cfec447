"""Fixtures over a real Docker engine and the real kernel image; nothing here is mocked."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import httpx
import openai
import pytest
from docker.models.containers import Container
from openai.types.responses import ResponseCodeInterpreterToolCall

from gateway import Settings
from sandbox import Sandbox, SandboxConfig, SandboxManager, SandboxSpec, labels_of

from .fake_upstream import Api, FakeUpstream
from .responses import OUTPUTS, calls, logs, tools_for

IMAGE = os.environ.get("KERNELGATE_IMAGE", "kernelgate/kernel:latest")
# The Docker runtime every test's sandboxes run under: CI runs the isolation suites again with runsc.
RUNTIME = os.environ.get("KERNELGATE_TEST_RUNTIME") or None


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture(scope="session")
def test_root(docker_client: docker.DockerClient) -> Iterator[Path]:
    """Every data directory of this session lives here; at the end no container may point into it."""
    # A short path: the kernel's unix sockets live below it.
    root = Path(tempfile.mkdtemp(prefix="kgt-"))
    yield root
    leaked = _unowned(docker_client, root)  # every owner is gone by now: any container is a leak
    for container in leaked:
        docker_client.api.remove_container(container["Id"], force=True)
    with open("/proc/mounts") as mounts:  # sandboxes' disks: a removed sandbox unmounts its own
        mounted = [line.split()[1] for line in mounts if line.split()[1].startswith(f"{root}/")]
    for mountpoint in mounted:
        subprocess.run(["umount", "--lazy", mountpoint], check=False)
    assert not leaked, f"tests leaked containers: {[c['Names'] for c in leaked]}"
    assert not mounted, f"tests leaked mounts: {mounted}"


# The session's long-lived owners of sandboxes: data directory -> the sandbox or container ids live there now.
_OWNERS: dict[str, Callable[[], set[str]]] = {}


@pytest.fixture(scope="module", autouse=True)
def _no_container_outlives_its_module(docker_client: docker.DockerClient, test_root: Path) -> Iterator[None]:
    """After each module, Docker holds no container of this session but the live ones of the shared fixtures."""
    yield
    deadline = time.monotonic() + 15  # an expired sandbox is removed by the next reaper pass
    while (leaked := _unowned(docker_client, test_root)) and time.monotonic() < deadline:
        time.sleep(0.5)
    for container in leaked:
        docker_client.api.remove_container(container["Id"], force=True)
    assert not leaked, f"containers outlived their tests: {[c['Labels'] for c in leaked]}"


def _unowned(client: docker.DockerClient, root: Path) -> list[dict[str, Any]]:
    """The containers of this session's data directories that no live shared owner holds."""
    live: dict[str, set[str]] = {}  # each owner asked once per check
    unowned = []
    for container in labelled(client, "kernelgate.managed=true"):
        labels = labels_of(container["Labels"])  # a sandbox claimed from a warm pool: its claim's
        data_dir = labels.get("kernelgate.data_dir", "")
        if not data_dir.startswith(f"{root}/"):
            continue
        if labels.get("kernelgate.pool") == "true" and data_dir in _OWNERS:
            continue  # a live owner's warm pool: never handed out
        if data_dir not in live:
            live[data_dir] = _OWNERS[data_dir]() if data_dir in _OWNERS else set()
        if not {labels.get("kernelgate.sandbox_id"), labels.get("kernelgate.label.container_id")} & live[data_dir]:
            unowned.append(container)
    return unowned


@pytest.fixture
def data_dir(test_root: Path) -> Path:
    return Path(tempfile.mkdtemp(dir=test_root))


def upstream_settings(fake: FakeUpstream, api: Api, data_dir: Path, **changes: object) -> Settings:
    """A gateway whose default upstream is this fake speaking `api`, with the key the fake expects."""
    values = {
        "data_dir": data_dir,
        "image": IMAGE,
        "runtime": RUNTIME,
        "upstream_api": api,
        "upstream_base_url": fake.url_for(api),
        "upstream_api_key": fake.key,
        "pool": {},
    }
    return Settings.model_validate(values | changes)


def gateway_settings(data_dir: Path, **changes: object) -> Settings:
    """A test gateway's settings: the test image and runtime, and no warm pool unless the test asks (a pool
    boots kernels behind every test; the shared gateway and tests/test_pool.py run one)."""
    return Settings.model_validate({"data_dir": data_dir, "image": IMAGE, "runtime": RUNTIME, "pool": {}} | changes)


def wait_for_pool(base_url: str, timeout: float, tier: str = "1g", size: int = 1) -> None:
    """Until a gateway's /health counts `size` ready sandboxes of `tier` in its warm pool."""
    deadline = time.monotonic() + timeout
    while httpx.get(f"{base_url}/health", timeout=30).json()["pool"].get(tier, 0) < size:
        assert time.monotonic() < deadline, f"the pool of {base_url} never held {size} of {tier}"
        time.sleep(0.1)


def config_for(data_dir: Path, **overrides: object) -> SandboxConfig:
    return SandboxConfig.model_validate({"data_dir": data_dir, "image": IMAGE, "runtime": RUNTIME, **overrides})


@pytest.fixture(scope="session")
async def manager(test_root: Path) -> AsyncIterator[SandboxManager]:
    """One manager shared by the tests that need no special configuration."""
    data_dir = test_root / "shared"
    async with SandboxManager(config_for(data_dir, interrupt_grace=2.0)) as shared:
        _OWNERS[str(data_dir)] = lambda: {sandbox.id for sandbox in shared.sandboxes()}
        yield shared
        del _OWNERS[str(data_dir)]


@pytest.fixture
async def sandbox(manager: SandboxManager) -> AsyncIterator[Sandbox]:
    """A fresh 512m sandbox, removed after the test."""
    created = await manager.create(SandboxSpec(memory_limit="512m"))
    yield created
    await asyncio.shield(_remove_quietly(manager, created))


async def _remove_quietly(manager: SandboxManager, sandbox: Sandbox) -> None:
    if sandbox in manager.sandboxes():
        await manager.remove(sandbox.id)


@pytest.fixture(scope="session")
def openai_base_url(test_root: Path) -> Iterator[str]:
    """One gateway for the API tests that need no special settings."""
    from gateway import Settings
    from gateway.testing import serve

    settings = Settings(data_dir=test_root / "gateway", image=IMAGE, runtime=RUNTIME, expiry_minute_seconds=1.0)
    with serve(settings) as base_url:
        _OWNERS[str(settings.data_dir)] = lambda: _running_containers(base_url)
        yield base_url
        del _OWNERS[str(settings.data_dir)]


def _running_containers(base_url: str) -> set[str]:
    """The ids of a gateway's running containers, as its Containers API lists them."""
    running, after = set(), ""
    while True:
        with urllib.request.urlopen(f"{base_url}/v1/containers?limit=100{after}", timeout=30) as answer:
            page = json.load(answer)
        running |= {container["id"] for container in page["data"] if container["status"] == "running"}
        if not page["has_more"]:
            return running
        after = f"&after={page['last_id']}"


@pytest.fixture
def client(openai_base_url: str) -> Iterator[openai.OpenAI]:
    """The official SDK pointed at the gateway; no retries, so every error shows."""
    with openai.OpenAI(base_url=f"{openai_base_url}/v1", api_key="unused", max_retries=0) as sdk:
        yield sdk


_CLIENTS: list[openai.OpenAI] = []


def sdk_for(base_url: str, *, api_key: str = "unused", timeout: float = 60) -> openai.OpenAI:
    """The official SDK pointed at a gateway, without retries; closed at the end of the test."""
    made = openai.OpenAI(base_url=f"{base_url}/v1", api_key=api_key, max_retries=0, timeout=timeout)
    _CLIENTS.append(made)
    return made


@pytest.fixture(autouse=True)
def _close_sdk_clients() -> Iterator[None]:
    """An SDK client left open leaks its sockets; warnings are errors here, and GC would raise them anywhere."""
    yield
    while _CLIENTS:
        _CLIENTS.pop().close()


class Bystander:
    """Another user's sandbox, with a variable and a file that no attack may touch."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    async def check(self) -> None:
        execution = await self.sandbox.execute("secret, open('/mnt/data/secret.txt').read()", timeout=30)
        assert execution.result is not None, execution
        assert execution.result.text == "('bystander', 'private')"


@pytest.fixture(scope="module")
async def bystander(manager: SandboxManager) -> AsyncIterator[Bystander]:
    sandbox = await manager.create(SandboxSpec(memory_limit="256m", files={"secret.txt": b"private"}))
    await sandbox.execute("secret = 'bystander'")
    yield Bystander(sandbox)
    await manager.remove(sandbox.id)


async def until(condition: Callable[[], object], timeout: float = 30) -> None:
    """Wait for something the code under test makes true (never a bare sleep); fail past the timeout."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"still not true after {timeout} s"
        await asyncio.sleep(0.01)


def labelled(client: docker.DockerClient, label: str) -> list[dict[str, Any]]:
    """Containers with a label, as Docker's summaries: one call, so none can vanish between two."""
    return list(client.api.containers(all=True, filters={"label": label}))


def container_of(client: docker.DockerClient, container_id: str) -> Container | None:
    """The Docker container behind an OpenAI container id, found by its label, or by its claim when a warm
    pool made it (None once it is gone)."""
    wanted = {"kernelgate.label.container_id": container_id}
    for summary in labelled(client, "kernelgate.managed=true"):
        if wanted.items() <= labels_of(summary["Labels"]).items():
            with contextlib.suppress(docker.errors.NotFound):
                return client.containers.get(summary["Id"])
    return None


def run_in(container: Container, command: str) -> str:
    """Run a shell command in the sandbox as the kernel's user, the way its code would."""
    result = container.exec_run(["sh", "-c", command], user=container.attrs["Config"]["User"])
    assert result.exit_code == 0, result.output
    assert isinstance(result.output, bytes)
    return result.output.decode()


def logged_call(client: openai.OpenAI, code: str) -> tuple[ResponseCodeInterpreterToolCall, str]:
    """Run code as one kernelgate/exec call in a new 1g container; the call item and its logs."""
    tools = tools_for({"type": "auto", "memory_limit": "1g"})
    response = client.responses.create(model="kernelgate/exec", input=code, tools=tools, include=OUTPUTS, timeout=120)
    (call,) = calls(response)
    return call, logs(call)
