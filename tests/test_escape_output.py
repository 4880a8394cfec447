"""Code that floods or forges output: what a call keeps stays bounded, and the sandbox carries on.

The gateway's side of the same (memory growth, /health latency during a 200 MB flood) is in `make bench`.
"""

from __future__ import annotations

import openai

from sandbox import ExecutionStatus, Sandbox, SandboxManager, SandboxSpec

from .conftest import Bystander, logged_call

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


def test_a_display_with_bad_base64_is_a_completed_call_with_a_note(client: openai.OpenAI) -> None:
    """`display({'image/png': 'abc'}, raw=True)` once made a 500 and lost the response."""
    call, logs = logged_call(
        client, "from IPython.display import display\ndisplay({'image/png': 'abc'}, raw=True)\nprint('ok')"
    )
    assert call.status == "completed"
    assert logs.startswith("ok\n")
    assert "1 messages from the kernel were not valid output" in logs


def test_a_print_flood_gives_a_bounded_response(client: openai.OpenAI) -> None:
    """200 MB printed: the call's logs keep about a million characters, head and tail."""
    call, logs = logged_call(client, "for i in range(200_000):\n    print('x' * 999)\nprint('END')")
    assert call.status == "completed"
    assert 1_000_000 <= len(logs) < 1_001_000
    assert logs.endswith("END\n")
    assert "characters of output dropped here" in logs


def test_a_file_name_that_is_not_utf8_is_left_out_with_a_note(client: openai.OpenAI) -> None:
    """Such a name once broke the store, and with it every later request on the container."""
    code = "open(b'/mnt/data/bad\\xff.txt', 'w').write('x')\nopen('good.txt', 'w').write('y')"
    call, logs = logged_call(client, code)
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
    call, _ = logged_call(client, code)
    assert call.status == "completed"
    page = client.containers.files.list(call.container_id, limit=100, order="asc")
    assert len(page.data) == 100
    assert page.has_more
    seen = sum(1 for _ in client.containers.files.list(call.container_id, limit=100))
    assert seen == 20_000
