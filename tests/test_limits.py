"""Timeouts, the memory limit and kernel death: each a status on the result, and the sandbox lives on."""

from __future__ import annotations

from sandbox import ExecutionStatus, Sandbox, SandboxManager, SandboxSpec

from .conftest import RUNTIME


async def test_timeout_interrupts_and_keeps_variables(sandbox: Sandbox) -> None:
    """Code past its timeout is interrupted; the kernel and earlier variables survive."""
    await sandbox.execute("kept = 'yes'")
    execution = await sandbox.execute("import time\nprint('sleeping', flush=True)\ntime.sleep(30)", timeout=1)
    assert execution.status is ExecutionStatus.TIMEOUT
    assert execution.state_kept
    assert execution.stdout == "sleeping\n"
    assert execution.message is not None
    assert "timed out after 1 s" in execution.message
    assert "kept" in execution.message
    after = await sandbox.execute("kept")
    assert after.result is not None
    assert after.result.text == "'yes'"


async def test_timeout_stops_the_processes_the_code_started(sandbox: Sandbox) -> None:
    """The interrupt reaches the code's own subprocesses, as Ctrl-C reaches a terminal's foreground
    group; the watchdog that stops an abandoned sandbox is in a group of its own and lives on."""
    code = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen(['sleep', '300'])\n"
        "grandchild = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])\n"
        "time.sleep(300)"
    )
    execution = await sandbox.execute(code, timeout=1)
    assert execution.status is ExecutionStatus.TIMEOUT
    assert execution.state_kept
    check = (
        "import os, time\n"
        "for _ in range(50):\n"
        "    if child.poll() is not None and grandchild.poll() is not None:\n"
        "        break\n"
        "    time.sleep(0.1)\n"
        "cmds = [open(f'/proc/{p}/cmdline', 'rb').read() for p in os.listdir('/proc') if p.isdigit()]\n"
        "print(child.poll(), grandchild.poll() is not None, sum(b'watchdog' in c for c in cmds))"
    )
    after = await sandbox.execute(check)
    assert after.stdout == "-2 True 1\n", after


async def test_timeout_restarts_a_kernel_that_ignores_the_interrupt(sandbox: Sandbox) -> None:
    """Code that swallows KeyboardInterrupt is stopped by a restart, and the result says state is gone."""
    await sandbox.execute("lost = 1")
    code = "import time\nwhile True:\n    try:\n        time.sleep(5)\n    except KeyboardInterrupt:\n        pass"
    execution = await sandbox.execute(code, timeout=1)
    assert execution.status is ExecutionStatus.TIMEOUT
    assert not execution.state_kept
    assert execution.message is not None
    assert "restarted" in execution.message
    after = await sandbox.execute("'lost' in globals()")
    assert after.result is not None
    assert after.result.text == "False"


async def test_memory_limit_is_reported_and_the_sandbox_recovers(manager: SandboxManager) -> None:
    """Allocating past the limit gives out_of_memory naming the limit; the next execution works."""
    sandbox = await manager.create(SandboxSpec(memory_limit="256m"))
    try:
        await sandbox.execute("before = 1")
        execution = await sandbox.execute("block = bytearray(600 * 1024 * 1024)\nprint('allocated')", timeout=60)
        assert execution.status is ExecutionStatus.OUT_OF_MEMORY
        assert not execution.state_kept
        assert execution.message is not None
        assert "256m" in execution.message
        assert "allocated" not in execution.stdout
        after = await sandbox.execute("'before' in globals(), 40 + 2")
        assert after.status is ExecutionStatus.OK
        assert after.result is not None
        assert after.result.text == "(False, 42)"
    finally:
        await manager.remove(sandbox.id)


async def test_memory_under_the_limit_is_fine(manager: SandboxManager) -> None:
    """The limit is the one asked for: 300 MB fits in a 1g sandbox."""
    sandbox = await manager.create(SandboxSpec(memory_limit="1g"))
    try:
        execution = await sandbox.execute("block = bytearray(300 * 1024 * 1024)\nlen(block)", timeout=60)
        assert execution.status is ExecutionStatus.OK
    finally:
        await manager.remove(sandbox.id)


async def test_kernel_exit_is_reported_and_recovered(sandbox: Sandbox) -> None:
    """os._exit kills the kernel: status kernel_died with the exit code, then a fresh kernel."""
    await sandbox.execute("gone = 1")
    execution = await sandbox.execute("import os\nos._exit(7)", timeout=30)
    assert execution.status is ExecutionStatus.KERNEL_DIED
    assert not execution.state_kept
    assert execution.message is not None
    assert "exit code 7" in execution.message
    after = await sandbox.execute("'gone' in globals()")
    assert after.result is not None
    assert after.result.text == "False"


async def test_segfault_is_a_dead_kernel_not_out_of_memory(sandbox: Sandbox) -> None:
    """A segfault is reported as kernel_died, and the sandbox keeps working."""
    execution = await sandbox.execute("import ctypes\nctypes.string_at(0)", timeout=30)
    assert execution.status is ExecutionStatus.KERNEL_DIED
    after = await sandbox.execute("1 + 1")
    assert after.status is ExecutionStatus.OK


async def test_restart_clears_variables_and_keeps_files(sandbox: Sandbox) -> None:
    """restart() gives a fresh kernel; /mnt/data is untouched."""
    await sandbox.execute("x = 1\nopen('keep.txt', 'w').write('k')")
    await sandbox.restart()
    execution = await sandbox.execute("'x' in globals(), open('keep.txt').read()")
    assert execution.result is not None
    assert execution.result.text == "(False, 'k')"


async def test_a_child_process_killed_for_memory_is_reported(manager: SandboxManager) -> None:
    """When the OOM killer takes a subprocess, the kernel lives on and the result says what happened
    (under gVisor the whole sandbox is killed, and the result says that)."""
    sandbox = await manager.create(SandboxSpec(memory_limit="256m"))
    try:
        await sandbox.execute("kept = 1")
        code = (
            "import subprocess, sys\n"
            "child = subprocess.run([sys.executable, '-c', 'x = bytearray(600 * 1024 * 1024)'])\n"
            "child.returncode"
        )
        execution = await sandbox.execute(code, timeout=60)
        assert execution.message is not None
        assert "256m" in execution.message
        if RUNTIME == "runsc":
            # gVisor's memory is the whole sandbox's: the host's OOM killer takes it all, kernel included.
            assert execution.status is ExecutionStatus.OUT_OF_MEMORY
            assert not execution.state_kept
            assert (await sandbox.execute("1 + 1")).status is ExecutionStatus.OK
            return
        assert execution.status is ExecutionStatus.OK
        assert execution.result is not None
        assert execution.result.text == "-9"
        assert execution.state_kept
        assert (await sandbox.execute("kept")).status is ExecutionStatus.OK
    finally:
        await manager.remove(sandbox.id)
