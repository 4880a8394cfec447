"""Running code: results, outputs in order, state, streaming, serialisation and parallelism."""

from __future__ import annotations

import asyncio

from sandbox import (
    DisplayOutput,
    ErrorOutput,
    ExecutionStatus,
    Finished,
    ResultOutput,
    Sandbox,
    SandboxManager,
    SandboxSpec,
    StreamOutput,
)

from .conftest import until


async def test_state_persists_between_executions(sandbox: Sandbox) -> None:
    """A variable defined by one execution is there in the next."""
    await sandbox.execute("answer = 6 * 7")
    execution = await sandbox.execute("answer")
    assert execution.status is ExecutionStatus.OK
    assert execution.result is not None
    assert execution.result.text == "42"
    assert execution.state_kept


async def test_stdout_and_stderr_keep_their_order(sandbox: Sandbox) -> None:
    """Interleaved prints come back in the order the code made them, each on its stream."""
    code = (
        "import sys\n"
        "for i in range(3):\n"
        "    print('out', i, flush=True)\n"
        "    print('err', i, file=sys.stderr, flush=True)\n"
    )
    execution = await sandbox.execute(code)
    streams = [(o.name, o.text) for o in execution.outputs if isinstance(o, StreamOutput)]
    joined = "".join(f"{name}:{text}" for name, text in streams)
    assert joined == "".join(f"stdout:out {i}\nstderr:err {i}\n" for i in range(3))
    assert execution.stdout == "out 0\nout 1\nout 2\n"
    assert execution.stderr == "err 0\nerr 1\nerr 2\n"


async def test_exception_is_an_error_result_with_traceback(sandbox: Sandbox) -> None:
    """Code that raises gives status error, the exception, and a plain-text traceback after earlier output."""
    execution = await sandbox.execute("print('before')\n{}['missing']")
    assert execution.status is ExecutionStatus.ERROR
    assert execution.error is not None
    assert execution.error.name == "KeyError"
    assert execution.error.value == "'missing'"
    assert "\x1b[" not in execution.error.text, "tracebacks are plain text, without ANSI colours"
    assert "KeyError" in execution.error.text
    assert isinstance(execution.outputs[0], StreamOutput)
    assert isinstance(execution.outputs[-1], ErrorOutput)
    assert execution.state_kept


async def test_matplotlib_show_yields_a_png_display(sandbox: Sandbox) -> None:
    """plt.show() gives a PNG display output, with its text form kept beside it."""
    execution = await sandbox.execute(
        "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [3, 1, 2])\nplt.title('t')\nplt.show()"
    )
    assert execution.status is ExecutionStatus.OK, execution
    (image,) = execution.images
    assert image.startswith(b"\x89PNG\r\n\x1a\n")
    display = next(o for o in execution.outputs if isinstance(o, DisplayOutput))
    assert "text/plain" in display.data


async def test_rich_results_keep_every_mime_type(sandbox: Sandbox) -> None:
    """A DataFrame result carries both its text and its HTML form."""
    execution = await sandbox.execute("import pandas as pd\npd.DataFrame({'a': [1, 2]})")
    assert isinstance(execution.result, ResultOutput)
    assert "text/html" in execution.result.data
    assert "a" in (execution.result.text or "")


async def test_files_created_or_changed_are_reported(sandbox: Sandbox) -> None:
    """The result lists files the execution wrote, and not files it left alone."""
    await sandbox.write_file("untouched.txt", b"same")
    await sandbox.write_file("changed.txt", b"old")
    execution = await sandbox.execute(
        "import os\nos.makedirs('out', exist_ok=True)\n"
        "open('out/new.csv', 'w').write('a,b\\n1,2\\n')\n"
        "open('changed.txt', 'w').write('new and longer')\n"
    )
    assert [f.name for f in execution.files] == ["changed.txt", "out/new.csv"]
    assert execution.files[1].path == "/mnt/data/out/new.csv"
    assert execution.files[1].size == len("a,b\n1,2\n")


async def test_stream_yields_output_while_the_code_still_runs(sandbox: Sandbox) -> None:
    """The first print arrives while the code is blocked waiting for the test to let it finish."""
    code = (
        "import os, time\nprint('waiting', flush=True)\n"
        "while not os.path.exists('go'):\n    time.sleep(0.02)\nprint('done')"
    )
    events = []
    async for event in sandbox.stream(code, timeout=30):
        events.append(event)
        if isinstance(event, StreamOutput) and event.text == "waiting\n":
            await sandbox.write_file("go", b"")  # only now can the code finish
    assert isinstance(events[-1], Finished)
    assert events[-1].execution.status is ExecutionStatus.OK
    assert events[-1].execution.stdout == "waiting\ndone\n"


async def test_closing_a_stream_early_interrupts_the_code(sandbox: Sandbox) -> None:
    """A consumer that stops reading gets the code interrupted, and the kernel stays usable."""
    stream = sandbox.stream("import time\nprint('started', flush=True)\nstopped = False\ntime.sleep(60)")
    async for event in stream:
        assert isinstance(event, StreamOutput)
        break
    await stream.aclose()  # type: ignore[attr-defined]  # an async generator
    execution = await sandbox.execute("stopped", timeout=10)
    assert execution.status is ExecutionStatus.OK
    assert execution.result is not None
    assert execution.result.text == "False"


async def test_executions_of_one_sandbox_run_one_at_a_time(sandbox: Sandbox) -> None:
    """A second execution waits for the first: it sees the first one's last write."""
    first = asyncio.ensure_future(sandbox.execute("import time\nlog = []\ntime.sleep(0.5)\nlog.append('first')"))
    await until(lambda: sandbox.busy)  # the first is running
    second = await sandbox.execute("log.append('second'); log")
    await first
    assert second.result is not None
    assert second.result.text == "['first', 'second']"


async def test_sandboxes_run_in_parallel(manager: SandboxManager) -> None:
    """One sandbox blocked in its code does not hold up another."""
    blocked = await manager.create(SandboxSpec(memory_limit="256m"))
    other = await manager.create(SandboxSpec(memory_limit="256m"))
    try:
        waiting = asyncio.ensure_future(
            blocked.execute("import os, time\nwhile not os.path.exists('go'):\n    time.sleep(0.02)", timeout=30)
        )
        quick = await other.execute("1 + 1", timeout=30)
        assert quick.result is not None
        assert quick.result.text == "2"
        assert not waiting.done()
        await blocked.write_file("go", b"")
        assert (await waiting).status is ExecutionStatus.OK
    finally:
        await manager.remove(blocked.id)
        await manager.remove(other.id)


async def test_input_is_refused_not_hung(sandbox: Sandbox) -> None:
    """input() raises at once instead of waiting for a stdin nobody can answer."""
    execution = await sandbox.execute("input('name? ')", timeout=10)
    assert execution.status is ExecutionStatus.ERROR
    assert execution.error is not None
    assert execution.error.name == "StdinNotImplementedError"
