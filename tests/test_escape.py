"""Code that attacks its sandbox: each case checks the code was contained and the manager stayed whole.

Everything the code can write, print or send is hostile input; these tests write, print and send the
worst of it on purpose.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import docker
import httpx
import openai
import pytest

from gateway import Settings
from gateway.testing import serve
from sandbox import DiskFull, ExecutionStatus, Sandbox, SandboxManager, SandboxSpec

from .conftest import IMAGE, config_for, labelled, sdk_for


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
    """The code can read its deadline but cannot change it or its connection file."""
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
    assert await _value(sandbox, code) == "['EROFS', 'EROFS', 'EROFS']"


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


# -- output: floods, forged and oversized messages ------------------------------------------------

FORGE = (
    "k = get_ipython().kernel\n"
    "def forge(kind, content):\n"
    "    k.session.send(k.iopub_socket, kind, content, parent=k.get_parent('shell'))\n"
)


async def test_a_print_flood_keeps_its_head_and_tail(sandbox: Sandbox, bystander: Bystander) -> None:
    """50 MB printed in a loop: the first and last half-million characters are kept, with a marker between."""
    code = "for i in range(50_000):\n    print(f'{i:08d}' + 'x' * 991)\nprint('END')"
    execution = await sandbox.execute(code, timeout=120)
    assert execution.status is ExecutionStatus.OK
    assert execution.stdout.startswith("00000000xxx")
    assert execution.stdout.endswith("00049999" + "x" * 991 + "\nEND\n")
    assert "characters of output dropped here" in execution.stdout
    assert 1_000_000 <= len(execution.stdout) < 1_000_200
    await bystander.check()


async def test_one_huge_print_arrives_whole_at_both_ends(manager: SandboxManager) -> None:
    """A single 200 MB write leaves the kernel in pieces, faster than they are read; its end is not lost."""
    sandbox = await manager.create(SandboxSpec(memory_limit="2g"))
    try:
        execution = await sandbox.execute("print('a' * 100_000_000 + 'b' * 100_000_000 + 'END')", timeout=120)
        assert execution.status is ExecutionStatus.OK, execution.message
        assert execution.stdout.startswith("aaaa")
        assert execution.stdout.endswith("bbbbEND\n")
        assert (await sandbox.execute("print('next')")).stdout == "next\n"
    finally:
        await manager.remove(sandbox.id)


PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="


async def test_a_figure_flood_keeps_the_first_hundred(sandbox: Sandbox) -> None:
    """Displays past the cap are dropped, and a note says how many."""
    code = (
        "from IPython.display import display, Image\nimport base64\n"
        f"png = base64.b64decode({PIXEL!r})\n"
        "for _ in range(250):\n    display(Image(png))\nprint('done')"
    )
    execution = await sandbox.execute(code, timeout=60)
    assert execution.status is ExecutionStatus.OK
    assert len(execution.images) == 100
    assert "150 displayed outputs" in execution.stderr
    assert execution.stdout == "done\n"


async def test_forged_kernel_messages_are_ignored_with_a_note(sandbox: Sandbox, bystander: Bystander) -> None:
    """Unknown stream names, wrong types, bad base64, non-object content: the call completes with the rest."""
    code = FORGE + (
        "forge('stream', {'name': 'weird', 'text': 'a'})\n"
        "forge('stream', {'name': 'stdout', 'text': 5})\n"
        "forge('display_data', {'data': {'image/png': 'abc'}, 'metadata': {}})\n"
        "forge('display_data', {'data': []})\n"
        "forge('error', {'ename': 3})\n"
        "forge('stream', 'not an object')\n"
        "forge('execute_result', {'data': {'text/plain': 'fine'}, 'metadata': {}, 'execution_count': 1})\n"
        "print('still here')"
    )
    execution = await sandbox.execute(code, timeout=60)
    assert execution.status is ExecutionStatus.OK, execution
    assert execution.stdout == "still here\n"
    assert execution.result is not None
    assert execution.result.text == "fine"
    assert "[kernelgate: 6 messages from the kernel were not valid output and were ignored]" in execution.stderr
    assert (await sandbox.execute("print('next')")).stdout == "next\n"
    await bystander.check()


async def test_an_oversized_message_is_refused_and_the_sandbox_recovers(sandbox: Sandbox, bystander: Bystander) -> None:
    """A 50 MB message sent past the kernel's own splitting never reaches memory; the next call has output."""
    code = FORGE + "forge('stream', {'name': 'stdout', 'text': 'z' * 50_000_000})"
    execution = await sandbox.execute(code, timeout=60)
    assert execution.status is ExecutionStatus.OK
    assert "z" not in execution.stdout
    assert "some output may be missing" in execution.stderr
    assert (await sandbox.execute("print('next')")).stdout == "next\n"
    await bystander.check()


# -- the same, through the gateway ------------------------------------------------------------------

AUTO = [{"type": "code_interpreter", "container": {"type": "auto", "memory_limit": "1g"}}]


def _logs(client: openai.OpenAI, code: str) -> tuple[Any, str]:
    response = client.responses.create(
        model="kernelgate/exec", input=code, tools=AUTO, include=["code_interpreter_call.outputs"], timeout=120
    )
    (call,) = [item for item in response.output if item.type == "code_interpreter_call"]
    return call, "".join(o.logs for o in call.outputs if o.type == "logs")


def test_a_display_with_bad_base64_is_a_completed_call_with_a_note(client: openai.OpenAI) -> None:
    """`display({'image/png': 'abc'}, raw=True)` once made a 500 and lost the response."""
    call, logs = _logs(
        client, "from IPython.display import display\ndisplay({'image/png': 'abc'}, raw=True)\nprint('ok')"
    )
    assert call.status == "completed"
    assert logs.startswith("ok\n")
    assert "1 messages from the kernel were not valid output" in logs


def test_a_print_flood_gives_a_bounded_response(client: openai.OpenAI) -> None:
    """200 MB printed: the call's logs keep about a million characters, head and tail."""
    call, logs = _logs(client, "for i in range(200_000):\n    print('x' * 999)\nprint('END')")
    assert call.status == "completed"
    assert 1_000_000 <= len(logs) < 1_001_000
    assert logs.endswith("END\n")
    assert "characters of output dropped here" in logs


def test_a_file_name_that_is_not_utf8_is_left_out_with_a_note(client: openai.OpenAI) -> None:
    """Such a name once broke the store, and with it every later request on the container."""
    code = "open(b'/mnt/data/bad\\xff.txt', 'w').write('x')\nopen('good.txt', 'w').write('y')"
    call, logs = _logs(client, code)
    assert call.status == "completed"
    assert "1 entries in /mnt/data have names that are not UTF-8" in logs
    listed = [f.path for f in client.containers.files.list(call.container_id)]
    assert listed == ["/mnt/data/good.txt"]
    follow_up = client.responses.create(
        model="kernelgate/exec",
        input="print(sorted(os.listdir('.')) if (os := __import__('os')) else 0)",
        tools=[{"type": "code_interpreter", "container": call.container_id}],
    )
    assert follow_up.status == "completed"
    assert "good.txt" in follow_up.output_text


def test_twenty_thousand_files_are_all_recorded(client: openai.OpenAI) -> None:
    """Files the code writes are recorded in one transaction, off the event loop, however many."""
    code = "import os\nos.makedirs('many')\nfor i in range(20_000):\n    open(f'many/{i}.txt', 'w').close()"
    call, _ = _logs(client, code)
    assert call.status == "completed"
    page = client.containers.files.list(call.container_id, limit=100, order="asc")
    assert len(page.data) == 100
    assert page.has_more
    seen = sum(1 for _ in client.containers.files.list(call.container_id, limit=100))
    assert seen == 20_000


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
    with serve(settings.model_copy(update={"image": IMAGE})) as base_url:
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
