"""Files in /mnt/data: put, list, read, delete, and every way out of it refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox import FileNotFoundInSandbox, InvalidFilePath, Sandbox, SandboxManager, SandboxSpec


async def test_spec_files_are_in_mnt_data_before_the_code_runs(manager: SandboxManager, tmp_path: Path) -> None:
    """Files given at creation, as bytes or as host paths, are readable by the code."""
    host_file = tmp_path / "table.csv"
    host_file.write_text("a,b\n1,2\n")
    sandbox = await manager.create(
        SandboxSpec(memory_limit="256m", files={"notes.txt": b"hello", "data/table.csv": host_file})
    )
    try:
        execution = await sandbox.execute(
            "import pandas as pd\n(open('/mnt/data/notes.txt').read(), int(pd.read_csv('data/table.csv').b[0]))"
        )
        assert execution.result is not None
        assert execution.result.text == "('hello', 2)"
    finally:
        await manager.remove(sandbox.id)


async def test_write_list_read_and_delete(sandbox: Sandbox) -> None:
    """A file put into the sandbox is listed, read back byte for byte, and deleted."""
    payload = bytes(range(256)) * 100
    written = await sandbox.write_file("sub/blob.bin", payload)
    assert written.name == "sub/blob.bin"
    assert written.size == len(payload)
    assert [f.name for f in await sandbox.list_files()] == ["sub/blob.bin"]
    assert await sandbox.read_file("/mnt/data/sub/blob.bin") == payload
    size = await sandbox.execute("len(open('sub/blob.bin', 'rb').read())")
    assert size.result is not None
    assert size.result.text == str(len(payload))
    await sandbox.delete_file("sub/blob.bin")
    assert await sandbox.list_files() == []


async def test_files_written_by_code_are_readable_by_the_host(sandbox: Sandbox) -> None:
    """What the code writes, the library reads, whoever owns it."""
    await sandbox.execute("open('made.txt', 'w').write('from the kernel')")
    assert await sandbox.read_file("made.txt") == b"from the kernel"


async def test_files_the_host_writes_are_writable_by_the_code(sandbox: Sandbox) -> None:
    """The kernel's user can overwrite and delete a file the host put there."""
    await sandbox.write_file("shared.txt", b"host")
    execution = await sandbox.execute(
        "open('shared.txt', 'a').write('+kernel')\nimport os\nos.makedirs('sub/deeper')\nos.remove('shared.txt')"
    )
    assert execution.status.value == "ok", execution.error


@pytest.mark.parametrize("name", ["../escape.txt", "/etc/passwd", "a/../../escape.txt", "", "/mnt/data/../x"])
async def test_names_that_leave_mnt_data_are_refused(sandbox: Sandbox, name: str) -> None:
    """Traversal and absolute paths fail with InvalidFilePath, for every operation."""
    with pytest.raises(InvalidFilePath):
        await sandbox.write_file(name, b"x")
    with pytest.raises(InvalidFilePath):
        await sandbox.read_file(name)
    with pytest.raises(InvalidFilePath):
        await sandbox.delete_file(name)


async def test_links_planted_by_code_are_not_followed(sandbox: Sandbox) -> None:
    """A symlink made inside the sandbox cannot make the host read or write its own files."""
    await sandbox.execute(
        "import os\nos.symlink('/etc/passwd', 'passwd')\nos.symlink('/etc', 'etc')\nos.symlink('/tmp', 'tmpdir')"
    )
    with pytest.raises(InvalidFilePath):
        await sandbox.read_file("passwd")
    with pytest.raises(InvalidFilePath):
        await sandbox.read_file("etc/hostname")
    with pytest.raises(InvalidFilePath):
        await sandbox.write_file("tmpdir/planted", b"x")
    assert [f.name for f in await sandbox.list_files()] == [], "links are not listed as files"


async def test_a_fifo_is_refused_not_read_forever(sandbox: Sandbox) -> None:
    """Reading a named pipe the code made fails at once instead of blocking the host."""
    await sandbox.execute("import os\nos.mkfifo('pipe')")
    with pytest.raises(InvalidFilePath):
        await sandbox.read_file("pipe")


async def test_missing_file_raises_not_found(sandbox: Sandbox) -> None:
    """Reading or deleting a file that is not there names the file and the sandbox."""
    with pytest.raises(FileNotFoundInSandbox) as caught:
        await sandbox.read_file("nope.txt")
    assert caught.value.name == "nope.txt"
    assert caught.value.sandbox_id == sandbox.id
    with pytest.raises(FileNotFoundInSandbox):
        await sandbox.delete_file("missing/nope.txt")


async def test_a_directory_is_not_a_file(sandbox: Sandbox) -> None:
    """Deleting or overwriting a directory is refused."""
    await sandbox.execute("import os\nos.makedirs('folder')")
    with pytest.raises(InvalidFilePath):
        await sandbox.delete_file("folder")
    with pytest.raises(InvalidFilePath):
        await sandbox.write_file("folder", b"x")
