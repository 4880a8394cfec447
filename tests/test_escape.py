"""Code that attacks its sandbox: each case checks the code was contained and the manager stayed whole.

Everything the code can write, print or send is hostile input; these tests write, print and send the
worst of it on purpose.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

import docker
import httpx
import openai
import pytest

from gateway import Settings
from gateway.testing import serve
from sandbox import DiskFull, ExecutionStatus, Sandbox, SandboxManager, SandboxSpec

from .conftest import IMAGE, RUNTIME, Bystander, config_for, labelled, logged_call, sdk_for


async def _value(sandbox: Sandbox, code: str) -> str:
    execution = await sandbox.execute(code, timeout=60)
    assert execution.result is not None, execution
    assert execution.result.text is not None
    return execution.result.text


async def test_links_planted_in_the_run_directory_are_never_followed(
    sandbox: Sandbox, manager: SandboxManager, tmp_path: Path
) -> None:
    """The manager's own files are out of the code's reach: a planted link cannot make it write a host file."""
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    planted = (
        "import os\n"
        f"for name in ('expires-at.tmp', 'expires-at', 'kernel.json'):\n"
        f"    os.symlink({str(victim)!r}, '/run/kernelgate/' + name)\n"
        "sorted(os.listdir('/run/kernelgate'))[:3]"
    )
    assert "expires-at" in await _value(sandbox, planted)
    sandbox.touch()
    await manager.reap()  # saves every sandbox's deadline
    await sandbox.restart()  # clears the run directory and reconnects
    assert victim.read_text() == "untouched"
    assert (await sandbox.execute("1 + 1")).status is ExecutionStatus.OK


async def test_the_control_directory_is_read_only_to_the_code(sandbox: Sandbox) -> None:
    """The code can read its deadline but cannot change it or its connection file (the mount is read-only;
    gVisor checks the files' permissions first)."""
    code = (
        "import errno\n"
        "results = []\n"
        "for name in ('expires-at', 'kernel.json', 'new'):\n"
        "    try:\n"
        "        open('/etc/kernelgate/' + name, 'w').write('0')\n"
        "        results.append('wrote')\n"
        "    except OSError as exc:\n"
        "        results.append(errno.errorcode[exc.errno])\n"
        "results"
    )
    refused = set(eval(await _value(sandbox, code)))
    if RUNTIME is None:
        assert refused == {"EROFS"}
    else:
        assert refused <= {"EROFS", "EACCES"}, refused


async def test_a_sandbox_that_cannot_be_adopted_is_removed_and_the_manager_starts(
    data_dir: Path, docker_client: docker.DockerClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A broken connection file costs that one sandbox, with one log line; the others are adopted."""
    first = SandboxManager(config_for(data_dir))
    await first.start()
    broken = await first.create(SandboxSpec(memory_limit="256m"))
    kept = await first.create(SandboxSpec(memory_limit="256m"))
    await kept.execute("survivor = 1")
    await first.close(remove_sandboxes=False)
    connection = first.config.control_dir / broken.id / "kernel.json"
    connection.unlink()
    os.symlink("/etc/passwd", connection)

    with caplog.at_level(logging.WARNING, logger="kernelgate.sandbox"):
        async with SandboxManager(config_for(data_dir)) as second:
            assert [sb.id for sb in second.sandboxes()] == [kept.id]
            assert (await second.get(kept.id).execute("survivor")).status is ExecutionStatus.OK
            remaining = [c["Labels"]["kernelgate.sandbox_id"] for c in labelled(docker_client, "kernelgate.managed")]
            assert broken.id not in remaining
    lines = [r.getMessage() for r in caplog.records if broken.id in r.getMessage()]
    assert len(lines) == 1, lines
    assert "could not be adopted" in lines[0]
    assert not caplog.records[0].exc_info


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"\xff\xfe", b"[]", b'{"key": 1}', b"x" * 100_000],
    ids=["not-json", "not-utf8", "a-list", "no-key", "huge"],
)
async def test_a_connection_file_that_is_not_a_kernels_is_refused(
    data_dir: Path, content: bytes, docker_client: docker.DockerClient
) -> None:
    """Garbage, a wrong shape or a huge file in place of the connection file: the manager still starts."""
    first = SandboxManager(config_for(data_dir))
    await first.start()
    sandbox = await first.create(SandboxSpec(memory_limit="256m"))
    await first.close(remove_sandboxes=False)
    (first.config.control_dir / sandbox.id / "kernel.json").write_bytes(content)
    async with SandboxManager(config_for(data_dir)) as second:
        assert second.sandboxes() == []
    assert labelled(docker_client, f"kernelgate.data_dir={data_dir}") == []


async def test_output_written_below_python_does_not_fill_the_container_log(
    sandbox: Sandbox, docker_client: docker.DockerClient
) -> None:
    """os.write(1, ...) goes to the kernel's own stdout, which Docker logs: that log stays one small file."""
    code = "import os\nchunk = b'x' * 1_000_000 + b'\\n'\nfor _ in range(50):\n    os.write(1, chunk)"
    assert (await sandbox.execute(code, timeout=120)).status is ExecutionStatus.OK
    assert sandbox.container_id is not None
    log_path = Path(docker_client.api.inspect_container(sandbox.container_id)["LogPath"])
    sizes = [p.stat().st_size for p in log_path.parent.glob(log_path.name + "*")]
    assert sum(sizes) < 3 * 1024**2, sizes


async def test_core_dumps_are_off_and_open_files_are_capped(sandbox: Sandbox) -> None:
    """A crashing process leaves no core file to fill /mnt/data; descriptors stop at 4096."""
    code = "import resource\n[resource.getrlimit(r) for r in (resource.RLIMIT_CORE, resource.RLIMIT_NOFILE)]"
    assert await _value(sandbox, code) == "[(0, 0), (4096, 4096)]"


# -- disks ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def small_disks(test_root: Path) -> AsyncIterator[SandboxManager]:
    """A manager whose sandboxes get 64 MiB and 2,000 files of /mnt/data."""
    config = config_for(test_root / "small-disks", disk_limit=64 * 1024**2, max_files=2000)
    async with SandboxManager(config) as small:
        yield small


FILL = (
    "import errno, os\n"
    "def fill(path, chunk=b'x' * 1024 * 1024):\n"
    "    written = 0\n"
    "    try:\n"
    "        with open(path, 'wb') as out:\n"
    "            while written < 2 * 1024**3:\n"
    "                out.write(chunk); out.flush(); written += len(chunk)\n"
    "    except OSError as exc:\n"
    "        return errno.errorcode[exc.errno], written // 2**20\n"
    "    return 'no limit', written // 2**20\n"
)


async def test_filling_mnt_data_stops_at_its_limit_and_the_sandbox_recovers(
    small_disks: SandboxManager, bystander: Bystander
) -> None:
    """Past 64 MiB the code gets ENOSPC; the host's writes are refused too; deleting makes room."""
    assert (await small_disks.status()).disk_limit == 64 * 1024**2
    sandbox = await small_disks.create(SandboxSpec(memory_limit="256m"))
    try:
        code, megabytes = eval(await _value(sandbox, FILL + "fill('/mnt/data/big')"))
        assert code == "ENOSPC"
        assert 50 <= megabytes <= 64
        with pytest.raises(DiskFull):
            await sandbox.write_file("upload.bin", b"y" * 4 * 1024 * 1024)
        await sandbox.delete_file("big")
        assert (await sandbox.write_file("upload.bin", b"y" * 1024)).size == 1024
        assert await _value(sandbox, "open('/mnt/data/upload.bin').read(1)") == "'y'"
    finally:
        await small_disks.remove(sandbox.id)
    await bystander.check()


async def test_too_many_files_stop_at_the_file_limit(small_disks: SandboxManager) -> None:
    """Inodes are the file limit: the 2,001st file is ENOSPC, and the sandbox keeps working."""
    sandbox = await small_disks.create(SandboxSpec(memory_limit="256m"))
    try:
        code = (
            "import errno\nmade = 0\ntry:\n    for i in range(5000):\n        open(f'f{i}', 'w').close(); made += 1\n"
            "except OSError as exc:\n    outcome = errno.errorcode[exc.errno]\noutcome, made"
        )
        outcome, made = eval(await _value(sandbox, code))
        assert outcome == "ENOSPC"
        assert 1900 <= made <= 2000
        assert (await sandbox.execute("print('alive')")).stdout == "alive\n"
    finally:
        await small_disks.remove(sandbox.id)


async def test_tmp_shm_and_the_root_fs_cannot_fill_the_host(sandbox: Sandbox, bystander: Bystander) -> None:
    """/tmp is bounded by the memory limit, /dev/shm by its 64 MB, and the root filesystem is read-only."""
    shm, _ = eval(await _value(sandbox, FILL + "fill('/dev/shm/big')"))
    assert shm == "ENOSPC"
    root, _ = eval(await _value(sandbox, FILL + "fill('/var/big')"))
    assert root in ("EROFS", "EACCES")
    tmp = await sandbox.execute(FILL + "fill('/tmp/big')", timeout=120)
    # Past 512m of tmpfs the write fails, or the kernel is killed for memory first: contained either way.
    assert tmp.status in (ExecutionStatus.OK, ExecutionStatus.OUT_OF_MEMORY), tmp
    if tmp.status is ExecutionStatus.OK:
        assert tmp.result is not None
        assert "ENOSPC" in (tmp.result.text or "")
    assert (await sandbox.execute("print('alive')")).stdout == "alive\n"
    await bystander.check()


def test_a_full_container_refuses_uploads_with_a_413(data_dir: Path) -> None:
    """The Container Files API says the disk limit is reached; /health says what the limit is."""
    settings = Settings.from_env({"KERNELGATE_DATA_DIR": str(data_dir), "KERNELGATE_DISK_LIMIT": "32m"})
    with serve(settings.model_copy(update={"image": IMAGE, "runtime": RUNTIME})) as base_url:
        assert httpx.get(f"{base_url}/health").json()["disk_limit"] == 32 * 1024**2
        sdk = sdk_for(base_url)
        container = sdk.containers.create(name="full")
        fill = FILL + "fill('/mnt/data/big')"
        tools = [{"type": "code_interpreter", "container": container.id}]
        assert sdk.responses.create(model="kernelgate/exec", input=fill, tools=tools).status == "completed"  # type: ignore[arg-type]
        with pytest.raises(openai.APIStatusError) as caught:
            sdk.containers.files.create(container.id, file=("more.bin", b"z" * 2 * 1024 * 1024))
        assert caught.value.status_code == 413
        assert "disk limit" in caught.value.message
    assert Settings.from_env({"KERNELGATE_DISK_LIMIT": "off"}).disk_limit is None


# -- processes, privileges and what the code can see --------------------------------------------------


def _pids_cgroup(container_id: str) -> Path | None:
    """The container's pids cgroup on this host (cgroup v1 or v2), if it is visible here."""
    root = Path("/sys/fs/cgroup")
    for candidate in (
        root / "pids" / "docker" / container_id,
        root / "pids" / "system.slice" / f"docker-{container_id}.scope",
        root / "docker" / container_id,
        root / "system.slice" / f"docker-{container_id}.scope",
    ):
        if (candidate / "pids.max").exists():
            return candidate
    return None


async def test_a_fork_bomb_stops_at_the_pids_limit(sandbox: Sandbox, bystander: Bystander) -> None:
    """The classic shell bomb runs into the 512-task limit (the cgroup counts its refused forks; under gVisor
    the sandbox dies instead); a restart clears it, and the sandbox and its neighbour work."""
    code = "import subprocess, time\nsubprocess.Popen(['sh', '-c', 'b() { b | b & }; b'], stderr=subprocess.DEVNULL)"
    await sandbox.execute(code + "\ntime.sleep(3)", timeout=60)
    assert sandbox.container_id is not None
    cgroup = _pids_cgroup(sandbox.container_id)
    if cgroup is not None and RUNTIME != "runsc":  # gVisor's tasks are its own, not the host cgroup's
        assert (cgroup / "pids.max").read_text().strip() == "512"
        refused = int((cgroup / "pids.events").read_text().split()[1])
        assert refused > 0
    await sandbox.restart()
    assert (await sandbox.execute("print('calm')")).stdout == "calm\n"
    await bystander.check()


async def test_the_code_sees_only_its_own_processes_and_mounts(sandbox: Sandbox, bystander: Bystander) -> None:
    """/proc lists this container's few processes; mountinfo names no other sandbox."""
    code = (
        "import os\n"
        "cmds = [open(f'/proc/{p}/cmdline', 'rb').read() for p in os.listdir('/proc') if p.isdigit()]\n"
        "mountinfo = open('/proc/self/mountinfo').read()\n"
        "sum(b'kernelgate_launcher' in c for c in cmds), len(cmds) < 20, mountinfo"
    )
    kernels, few, mountinfo = eval(await _value(sandbox, code))
    assert (kernels, few) == (1, True)
    assert bystander.sandbox.id not in mountinfo
    assert sandbox.id in mountinfo or RUNTIME == "runsc"  # its own mounts, and only those


async def test_the_gateway_and_docker_are_out_of_reach(sandbox: Sandbox, openai_base_url: str) -> None:
    """No Docker socket, and neither the gateway's port nor the host's bridge answers."""
    port = int(openai_base_url.rsplit(":", 1)[1])
    code = (
        "import os, socket\n"
        "def reach(host, port):\n"
        "    try:\n"
        "        socket.create_connection((host, port), timeout=2).close()\n"
        "        return 'connected'\n"
        "    except OSError as exc:\n"
        "        return type(exc).__name__\n"
        "docker = any(os.path.exists(p) for p in ('/var/run/docker.sock', '/run/docker.sock'))\n"
        f"docker, reach('127.0.0.1', {port}), reach('172.17.0.1', {port}), reach('172.17.0.1', 2375)"
    )
    docker_socket, *attempts = eval(await _value(sandbox, code))
    assert docker_socket is False
    assert "connected" not in attempts, attempts


async def test_privileges_cannot_be_gained(sandbox: Sandbox) -> None:
    """No capabilities, no setuid to root, no new user namespace, and setuid binaries do not elevate."""
    code = (
        "import ctypes, os, subprocess\n"
        "status = dict(line.split(':', 1) for line in open('/proc/self/status').read().splitlines())\n"
        "try:\n    os.setuid(0)\n    setuid = 'became root'\nexcept PermissionError:\n    setuid = 'refused'\n"
        "unshare = ctypes.CDLL(None, use_errno=True).unshare(0x10000000)  # CLONE_NEWUSER\n"
        "su = subprocess.run(['su', '-c', 'id -u'], input=b'', capture_output=True).returncode\n"
        "int(status['CapEff'].strip(), 16), status.get('NoNewPrivs', '').strip(), setuid, unshare, su != 0, os.getuid()"
    )
    caps, no_new_privs, setuid, unshare, su_failed, uid = eval(await _value(sandbox, code))
    assert (caps, setuid, unshare, su_failed) == (0, "refused", -1, True)
    assert uid != 0
    assert no_new_privs == "1" or RUNTIME == "runsc"


async def test_signals_to_pid_1_are_contained(sandbox: Sandbox) -> None:
    """SIGKILL to init is ignored inside its namespace (gVisor lets init die: a dead kernel, restarted);
    SIGTERM takes the kernel down, and it comes back."""
    killed = await sandbox.execute("import os, signal\nos.kill(1, signal.SIGKILL)\nprint('alive')", timeout=60)
    if RUNTIME == "runsc":
        assert killed.status is ExecutionStatus.KERNEL_DIED, killed
    else:
        assert killed.stdout == "alive\n"
    down = await sandbox.execute("import os, signal, time\nos.kill(1, signal.SIGTERM)\ntime.sleep(30)", timeout=60)
    assert down.status in (ExecutionStatus.KERNEL_DIED, ExecutionStatus.OK), down
    assert (await sandbox.execute("print('back')")).stdout == "back\n"


def test_links_fifos_and_odd_names_through_the_api(client: openai.OpenAI) -> None:
    """What the code plants in /mnt/data never makes the gateway read outside it, hang, or fail."""
    code = (
        "import os\n"
        "os.symlink('/etc/passwd', 'passwd-link')\n"
        "os.symlink('/', 'root-link')\n"
        "os.mkfifo('pipe')\n"
        "open('new\\nline.txt', 'w').write('n')\n"
        "open('x' * 255, 'w').write('long')\n"
        "open('..dots..', 'w').write('d')\n"
        "print('planted')"
    )
    call, logs = logged_call(client, code)
    assert (call.status, logs) == ("completed", "planted\n")
    listed = {f.path.removeprefix("/mnt/data/"): f for f in client.containers.files.list(call.container_id)}
    assert set(listed) == {"new\nline.txt", "x" * 255, "..dots.."}
    content = client.containers.files.content.retrieve(listed["x" * 255].id, container_id=call.container_id)
    assert content.read() == b"long"
