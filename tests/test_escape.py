"""Code that attacks its sandbox: each case checks the code was contained and the manager stayed whole.

Everything the code can write, print or send is hostile input; these tests write, print and send the
worst of it on purpose.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import docker
import pytest

from sandbox import ExecutionStatus, Sandbox, SandboxManager, SandboxSpec

from .conftest import config_for, labelled


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
