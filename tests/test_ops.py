"""The operator's commands, as a user runs them: `kernelgate doctor` passes here and names the fix for
each fault; `kernelgate containers` lists a gateway's containers beside it; `kernelgate gc` removes what
a gateway that is gone left behind, and refuses while one runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import docker
import pytest

from gateway.testing import serve

from .conftest import IMAGE, RUNTIME, gateway_settings, labelled, sdk_for, wait_for_pool

KERNELGATE = str(Path(sys.executable).parent / "kernelgate")


def _run(command: str, data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("KERNELGATE_", "OPENAI_", "ANTHROPIC_", "GEMINI_", "GOOGLE_"))
    }
    environ |= {"KERNELGATE_DATA_DIR": str(data_dir), "KERNELGATE_IMAGE": IMAGE, "KERNELGATE_PORT": "1", **env}
    if RUNTIME:
        environ["KERNELGATE_RUNTIME"] = RUNTIME
    return subprocess.run([KERNELGATE, command], capture_output=True, text=True, timeout=120, env=environ)


def test_doctor_passes_here(data_dir: Path) -> None:
    done = _run("doctor", data_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "FAIL" not in done.stdout
    assert "Ready: kernelgate can run code here" in done.stdout
    for name in ("data directory", "disk space", "Docker engine", "runtime", "kernel image", "kernel user", "port"):
        assert f"ok    {name}:" in done.stdout, name


@pytest.mark.parametrize(
    ("env", "failing", "fix"),
    [
        ({"DOCKER_HOST": "unix:///nonexistent/docker.sock"}, "Docker engine", "start Docker"),
        ({"KERNELGATE_IMAGE": "kernelgate/kernel:missing"}, "kernel image", "make image"),
        ({"KERNELGATE_RUNTIME": "no-such-runtime"}, "runtime", "make gvisor"),
        ({"KERNELGATE_UPSTREAM_API": "anthropic"}, "default upstream", "set ANTHROPIC_API_KEY"),
        ({"KERNELGATE_CASSETTE": "/nonexistent/cassette.json"}, "cassette", "KERNELGATE_CASSETTE_MODE=record"),
        ({"KERNELGATE_POOL": "1g:4"}, "settings", "KERNELGATE_POOL"),
    ],
    ids=["no-engine", "no-image", "no-runtime", "no-key", "no-cassette", "bad-setting"],
)
def test_doctor_names_the_fix_for_each_fault(data_dir: Path, env: dict[str, str], failing: str, fix: str) -> None:
    done = _run("doctor", data_dir, **env)
    assert done.returncode == 1, done.stdout
    lines = done.stdout.splitlines()
    at = next(n for n, line in enumerate(lines) if line.strip().startswith(f"FAIL  {failing}"))
    assert lines[at + 1].strip().startswith("fix: "), done.stdout
    assert fix in lines[at] + lines[at + 1], done.stdout


def test_doctor_names_an_unwritable_data_directory(data_dir: Path) -> None:
    blocker = data_dir / "a-file"
    blocker.write_text("not a directory")
    done = _run("doctor", blocker / "data")
    assert done.returncode == 1
    assert "FAIL  data directory" in done.stdout
    assert "fix: set KERNELGATE_DATA_DIR" in done.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small filesystem needs root")
def test_doctor_names_a_full_disk(data_dir: Path) -> None:
    small = data_dir / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(small)], check=True)
    try:
        done = _run("doctor", small / "data")
    finally:
        subprocess.run(["umount", str(small)], check=True)
    assert done.returncode == 1
    assert "FAIL  disk space: 0.0 GiB free" in done.stdout
    assert "roomier filesystem" in done.stdout


def test_containers_lists_a_running_gateways_containers(data_dir: Path) -> None:
    """Beside a gateway (which holds the data directory): its containers with name, memory and expiry,
    and its warm pool."""
    settings = gateway_settings(data_dir, pool={"1g": 1})
    with serve(settings) as base_url:
        sdk = sdk_for(base_url)
        made = sdk.containers.create(name="listed")
        wait_for_pool(base_url, timeout=60)  # refilled behind the claim
        done = _run("containers", data_dir)
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        row = next(line for line in lines if line.startswith(made.id))
        assert "listed" in row
        assert "running" in row
        assert "/ 1g" in row
        assert row.split()[-2].endswith("m")  # expires in about 20 minutes
        assert len([line for line in lines if " pool " in line]) == 1
        assert lines[-1] == f"2 container(s) of {data_dir}"


def test_gc_removes_what_a_stopped_gateway_left_and_refuses_beside_a_running_one(
    data_dir: Path, docker_client: docker.DockerClient
) -> None:
    settings = gateway_settings(data_dir)
    with serve(settings, purge=False) as base_url:
        sdk_for(base_url).containers.create(name="left")
        refused = _run("gc", data_dir)
        assert refused.returncode == 1
        assert "a gateway is running" in refused.stdout
    assert labelled(docker_client, f"kernelgate.data_dir={data_dir}")  # left for the next start to adopt
    done = _run("gc", data_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 sandbox(es) removed" in done.stdout
    assert labelled(docker_client, f"kernelgate.data_dir={data_dir}") == []
