"""What code inside a sandbox can see and do: no network, no root, a fixed environment, hard limits."""

from __future__ import annotations

import os

import docker
import pytest

from sandbox import Sandbox, SandboxManager, SandboxSpec

from .conftest import RUNTIME


async def _value(sandbox: Sandbox, expression: str) -> str:
    execution = await sandbox.execute(expression)
    assert execution.result is not None, execution
    assert execution.result.text is not None
    return execution.result.text


async def test_network_is_absent_except_loopback(sandbox: Sandbox) -> None:
    """The only interface is lo, and connecting out fails."""
    assert await _value(sandbox, "import os; sorted(os.listdir('/sys/class/net'))") == "['lo']"
    code = (
        "import socket\ntry:\n    socket.create_connection(('1.1.1.1', 53), timeout=2)\n    outcome = 'connected'\n"
        "except OSError as exc:\n    outcome = type(exc).__name__\noutcome"
    )
    assert await _value(sandbox, code) != "'connected'"


@pytest.mark.skipif(RUNTIME == "runsc", reason="runsc is registered with --network=none: no sandbox gets one")
async def test_network_can_be_turned_on(manager: SandboxManager) -> None:
    """SandboxSpec(network=True) gives the container an interface besides lo."""
    sandbox = await manager.create(SandboxSpec(memory_limit="256m", network=True))
    try:
        interfaces = await _value(sandbox, "import os; sorted(os.listdir('/sys/class/net'))")
        assert "eth0" in interfaces
    finally:
        await manager.remove(sandbox.id)


async def test_kernel_runs_as_non_root_in_mnt_data(sandbox: Sandbox) -> None:
    """The kernel's uid is not 0, and its working directory is /mnt/data."""
    uid = int(await _value(sandbox, "import os; os.getuid()"))
    assert uid != 0
    assert uid == (1000 if os.getuid() == 0 else os.getuid())
    assert await _value(sandbox, "os.getcwd()") == "'/mnt/data'"


async def test_root_filesystem_is_read_only_and_tmp_is_writable(sandbox: Sandbox) -> None:
    """Writing outside /mnt/data and /tmp fails; /tmp works."""
    code = (
        "try:\n    open('/opt/x', 'w')\n    outcome = 'wrote'\nexcept OSError as exc:\n    outcome = exc.errno\noutcome"
    )
    assert await _value(sandbox, code) in ("30", "13")  # EROFS, or EACCES for the non-root user
    assert await _value(sandbox, "open('/tmp/x', 'w').write('ok')") == "2"


async def test_environment_is_fixed_for_reproducible_runs(sandbox: Sandbox) -> None:
    """Hash seed, time zone, locale, hostname and the plotting backend are the same in every sandbox."""
    code = (
        "import os, socket, sys, matplotlib\n"
        "'|'.join(map(str, (os.environ['PYTHONHASHSEED'], os.environ['TZ'], sys.getfilesystemencoding(),"
        " socket.gethostname(), matplotlib.get_backend(), hash('kernelgate'))))"
    )
    first = await _value(sandbox, code)
    assert first.startswith("'0|UTC|utf-8|sandbox|module://matplotlib_inline.backend_inline|")
    await sandbox.restart()
    assert await _value(sandbox, code) == first, "string hashes must not change between kernels"


async def test_data_stack_is_installed(sandbox: Sandbox) -> None:
    """The libraries hosted interpreters ship import."""
    modules = "numpy pandas matplotlib scipy sympy seaborn sklearn PIL openpyxl tabulate"
    execution = await sandbox.execute(f"import {', '.join(modules.split())}")
    assert execution.status.value == "ok", execution.error


async def test_container_has_hardened_defaults(sandbox: Sandbox, docker_client: docker.DockerClient) -> None:
    """The container drops capabilities, forbids privilege gain, caps memory, swap, CPU, pids, open files
    and its log, and writes no core dumps."""
    assert sandbox.container_id is not None
    attrs = docker_client.containers.get(sandbox.container_id).attrs
    host = attrs["HostConfig"]
    assert host["NetworkMode"] == "none"
    assert host["CapDrop"] == ["ALL"]
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["ReadonlyRootfs"] is True
    assert host["Init"] is True
    assert host["Memory"] == 512 * 1024**2
    assert host["MemorySwap"] == host["Memory"]
    assert host["NanoCpus"] == 1_000_000_000
    assert host["PidsLimit"] == 512
    assert "/tmp" in host["Tmpfs"]
    mounts = {m["Destination"]: m["RW"] for m in attrs["Mounts"]}
    assert mounts == {"/mnt/data": True, "/run/kernelgate": True, "/etc/kernelgate": False}
    assert host["Runtime"] == (RUNTIME or "runc")
    assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "1m", "max-file": "1"}}
    assert {u["Name"]: (u["Soft"], u["Hard"]) for u in host["Ulimits"]} == {"core": (0, 0), "nofile": (4096, 4096)}
    assert attrs["Config"]["Labels"]["kernelgate.managed"] == "true"
    assert attrs["Config"]["Labels"]["kernelgate.sandbox_id"] == sandbox.id
    assert attrs["Config"]["Labels"]["kernelgate.memory_limit"] == "512m"


async def test_zombies_are_reaped(sandbox: Sandbox) -> None:
    """Orphaned child processes do not pile up as zombies: an init process reaps them."""
    code = (
        "import subprocess, time\n"
        "for _ in range(5):\n"
        "    subprocess.run(['sh', '-c', 'sleep 0.1 & exit 0'], check=True)\n"
        "time.sleep(1)\n"
        "import os\n"
        "states = [open(f'/proc/{p}/stat').read().split()[2] for p in os.listdir('/proc') if p.isdigit()]\n"
        "states.count('Z')"
    )
    # Each `sleep` outlives its shell, is re-parented to PID 1, and exits: only an init reaps it.
    assert await _value(sandbox, code) == "0"
