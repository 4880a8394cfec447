"""The Anthropic door: the anthropic SDK pointed at /anthropic runs code in kernelgate's sandbox.

What the door sends is parsed by the SDK's own types (and the raw stream is checked event by event).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
from anthropic.types import (
    BashCodeExecutionResultBlock,
    BashCodeExecutionToolResultBlock,
    CodeExecutionResultBlock,
    CodeExecutionToolResultBlock,
    Message,
    RawMessageStreamEvent,
    ServerToolUseBlock,
    TextBlock,
    TextEditorCodeExecutionCreateResultBlock,
    TextEditorCodeExecutionStrReplaceResultBlock,
    TextEditorCodeExecutionToolResultBlock,
    TextEditorCodeExecutionToolResultErrorObject,
    TextEditorCodeExecutionViewResultBlock,
    ToolUseBlock,
)
from pydantic import BaseModel, TypeAdapter

from gateway.testing import serve

from .conftest import gateway_settings, upstream_settings
from .fake_upstream import APIS, FakeUpstream, Reply, fake_upstream

RAW_EVENT: TypeAdapter[RawMessageStreamEvent] = TypeAdapter(RawMessageStreamEvent)
SHELL: Any = [{"type": "code_execution_20250825", "name": "code_execution"}]
PYTHON_ONLY: Any = [{"type": "code_execution_20250522", "name": "code_execution"}]


def _unknown_fields(value: Any) -> list[str]:
    """The fields of a parsed SDK model (at any depth) that the SDK's types do not have."""
    if isinstance(value, BaseModel):
        found = [f"{type(value).__name__}.{name}" for name in value.model_extra or {}]
        return found + [bad for name in type(value).model_fields for bad in _unknown_fields(getattr(value, name))]
    if isinstance(value, list | tuple):
        return [bad for part in value for bad in _unknown_fields(part)]
    return []


def _client(base_url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=f"{base_url}/anthropic", api_key="unused", max_retries=0)


@pytest.fixture
def claude(openai_base_url: str) -> Iterator[anthropic.Anthropic]:
    client = _client(openai_base_url)
    yield client
    client.close()


def _ask(client: anthropic.Anthropic, text: str, tools: Any = SHELL, container: str | None = None) -> Message:
    return client.messages.create(
        model="kernelgate/exec",
        max_tokens=1024,
        messages=[{"role": "user", "content": text}],
        tools=tools,
        container=container,
    )


def _python_result(block: Any) -> CodeExecutionResultBlock:
    assert isinstance(block, CodeExecutionToolResultBlock)
    assert isinstance(block.content, CodeExecutionResultBlock)
    return block.content


def _bash_result(block: Any) -> BashCodeExecutionResultBlock:
    assert isinstance(block, BashCodeExecutionToolResultBlock)
    assert isinstance(block.content, BashCodeExecutionResultBlock)
    return block.content


def test_python_and_bash_in_one_sandbox_and_its_files(claude: anthropic.Anthropic) -> None:
    """A Python block runs as code_execution, a bash block as bash_code_execution, in the same /mnt/data;
    the file the command wrote is a bash_code_execution_output whose file_id downloads."""
    message = _ask(claude, "```python\nx = 6 * 7\nprint(x)\n```\n```bash\necho $((6 * 7)) > out.txt; ls; exit 3\n```")
    use, result, bash_use, bash_result, answer = message.content
    assert isinstance(use, ServerToolUseBlock)
    assert (use.name, use.input) == ("code_execution", {"code": "x = 6 * 7\nprint(x)"})
    python = _python_result(result)
    assert isinstance(result, CodeExecutionToolResultBlock)
    assert (python.stdout, python.stderr, python.return_code, result.tool_use_id) == ("42\n", "", 0, use.id)
    assert isinstance(bash_use, ServerToolUseBlock)
    assert (bash_use.name, bash_use.input) == (
        "bash_code_execution",
        {"command": "echo $((6 * 7)) > out.txt; ls; exit 3"},
    )
    bash = _bash_result(bash_result)
    assert (bash.stdout, bash.return_code) == ("out.txt\n", 3)
    assert isinstance(answer, TextBlock)
    assert message.stop_reason == "end_turn"
    assert message.container is not None
    (output,) = bash.content
    assert claude.beta.files.download(output.file_id).read() == b"42\n"
    assert claude.beta.files.retrieve_metadata(output.file_id).filename == "out.txt"


def test_the_container_param_keeps_the_kernel(claude: anthropic.Anthropic) -> None:
    first = _ask(claude, "y = 41")
    assert first.container is not None
    follow = _ask(claude, "print(y + 1)", container=first.container.id)
    assert follow.container is not None
    assert follow.container.id == first.container.id
    assert _python_result(follow.content[1]).stdout == "42\n"
    fresh = _ask(claude, "print('y' in globals())")
    assert fresh.container is not None
    assert fresh.container.id != first.container.id  # no container named: a new one, as Anthropic's tool does


def test_the_stream_follows_anthropics_event_sequence(claude: anthropic.Anthropic, openai_base_url: str) -> None:
    body = {
        "model": "kernelgate/exec",
        "max_tokens": 1024,
        "stream": True,
        "messages": [{"role": "user", "content": "print('streamed')"}],
        "tools": PYTHON_ONLY,
    }
    with httpx.stream("POST", f"{openai_base_url}/anthropic/v1/messages", json=body, timeout=60) as response:
        events = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")]
    for event in events:  # each one is an event the SDK knows, field for field, with no field it does not
        assert not _unknown_fields(RAW_EVENT.validate_python(event)), event
    kinds = [event["type"] for event in events]
    assert kinds[0] == "message_start"
    assert kinds[-2:] == ["message_delta", "message_stop"]
    assert events[1]["content_block"]["type"] == "server_tool_use"
    partial = "".join(
        e["delta"]["partial_json"] for e in events if e["type"] == "content_block_delta" and e["index"] == 0
    )
    assert json.loads(partial) == {"code": "print('streamed')"}
    starts = [e["content_block"]["type"] for e in events if e["type"] == "content_block_start"]
    assert starts == ["server_tool_use", "code_execution_tool_result", "text"]
    assert events[-2]["delta"]["stop_reason"] == "end_turn"
    assert events[-2]["delta"]["container"]["id"].startswith("cntr_")
    with claude.messages.stream(
        model="kernelgate/exec", max_tokens=1024, messages=[{"role": "user", "content": "print(2)"}], tools=PYTHON_ONLY
    ) as stream:
        final = stream.get_final_message()
    assert _python_result(final.content[1]).stdout == "2\n"


def test_container_upload_puts_the_file_in_mnt_data(claude: anthropic.Anthropic) -> None:
    uploaded = claude.beta.files.upload(file=("t.csv", io.BytesIO(b"a,b\n1,2\n"), "text/csv"))
    message = claude.messages.create(
        model="kernelgate/exec",
        max_tokens=1024,
        tools=SHELL,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "container_upload", "file_id": uploaded.id},
                    {
                        "type": "text",
                        "text": "import glob\nimport pandas as pd\nprint(pd.read_csv(glob.glob('*t.csv')[0]).b.sum())",
                    },
                ],
            }
        ],
    )
    assert _python_result(message.content[1]).stdout == "2\n"


def test_errors_are_anthropics(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as unknown:
        claude.messages.create(
            model="kernelgate/exec", max_tokens=10, messages=[{"role": "user", "content": "1"}], extra_body={"frob": 1}
        )
    assert unknown.value.body == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "frob: Extra inputs are not permitted"},
        "request_id": unknown.value.body["request_id"],  # type: ignore[index]
    }
    with pytest.raises(anthropic.BadRequestError):
        _ask(claude, "1", tools=[{"type": "web_search_20250305", "name": "web_search"}])
    with pytest.raises(anthropic.NotFoundError) as missing:
        _ask(claude, "1", container="cntr_none")
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]


@pytest.fixture(params=APIS)
def upstream_claude(
    request: pytest.FixtureRequest, data_dir: Path
) -> Iterator[tuple[FakeUpstream, anthropic.Anthropic]]:
    """The Anthropic door in front of a model served over each upstream API."""
    with fake_upstream() as (fake, _), serve(upstream_settings(fake, request.param, data_dir)) as base_url:
        client = _client(base_url)
        yield fake, client
        client.close()


def test_any_upstream_model_behind_the_anthropic_door(
    upstream_claude: tuple[FakeUpstream, anthropic.Anthropic],
) -> None:
    """The model gets python, bash and the text editor (the 20250825 tool) beside the client's custom tool,
    whose call ends the message as tool_use for the client to answer."""
    fake, client = upstream_claude
    lookup: Any = {"name": "lookup", "description": "Look a word up.", "input_schema": {"type": "object"}}
    fake.script = [
        Reply(function=("bash", json.dumps({"command": "echo from-bash"}))),
        Reply(function=("lookup", '{"word": "kernel"}')),
    ]
    message = client.messages.create(
        model="m", max_tokens=1024, tools=[*SHELL, lookup], messages=[{"role": "user", "content": "go"}]
    )
    assert fake.seen[0].tools == ["python", "bash", "text_editor", "lookup"]
    assert _bash_result(message.content[1]).stdout == "from-bash\n"
    call = message.content[-1]
    assert isinstance(call, ToolUseBlock)
    assert (call.name, call.input, message.stop_reason) == ("lookup", {"word": "kernel"}, "tool_use")
    fake.script = [Reply(text="done")]
    history: Any = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in message.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "a core"}]},
    ]
    done = client.messages.create(
        model="m",
        max_tokens=1024,
        tools=[*SHELL, lookup],
        container=message.container.id if message.container else None,
        messages=history,
    )
    assert done.content[-1].type == "text"
    assert fake.seen[-1].results == ["from-bash\n", "a core"]


def test_a_command_past_the_timeout_is_stopped(data_dir: Path) -> None:
    """A bash command gets the timeout and interrupt of Python code: `execution_time_exceeded`, the command
    killed (its later output never comes), and the container's next call runs at once."""

    with serve(gateway_settings(data_dir, execution_timeout=1)) as base_url:
        client = _client(base_url)
        slow = _ask(client, "```bash\nsleep 30; echo late > late.txt\n```")
        result = slow.content[1]
        assert isinstance(result, BashCodeExecutionToolResultBlock)
        assert result.content.type == "bash_code_execution_tool_result_error"
        assert result.content.error_code == "execution_time_exceeded"
        assert slow.container is not None
        look = (  # the processes of the command (`sleep 30`, as its arguments are written in cmdline)
            "import os\nprint([p for p in os.listdir('/proc')\n"
            "       if p.isdigit() and b'sleep\\x0030' in open(f'/proc/{p}/cmdline', 'rb').read()])"
        )
        after = _ask(client, look, container=slow.container.id)
        assert _python_result(after.content[1]).stdout == "[]\n"  # the command was killed with the interrupt
        client.close()


def test_the_text_editor_works_on_the_sandboxs_files(upstream_claude: tuple[FakeUpstream, anthropic.Anthropic]) -> None:
    """On the 20250825 tool the model has a text editor beside bash: create, view and str_replace work on
    /mnt/data (what bash then reads), each answered with its own result block."""
    fake, client = upstream_claude

    def edit(**given: Any) -> Reply:
        return Reply(function=("text_editor", json.dumps(given)))

    fake.script = [
        edit(command="create", path="/mnt/data/notes.txt", file_text="alpha\nbeta\n"),
        edit(command="str_replace", path="notes.txt", old_str="beta", new_str="gamma"),
        edit(command="view", path="/mnt/data/notes.txt"),
        edit(command="view", path="missing.txt"),
        Reply(function=("bash", json.dumps({"command": "cat notes.txt"}))),
        Reply(text="edited"),
    ]
    message = client.messages.create(
        model="m", max_tokens=1024, tools=SHELL, messages=[{"role": "user", "content": "edit"}]
    )
    assert fake.seen[0].tools == ["python", "bash", "text_editor"]
    results = [block.content for block in message.content if isinstance(block, TextEditorCodeExecutionToolResultBlock)]
    created, replaced, viewed, missing = results
    assert isinstance(created, TextEditorCodeExecutionCreateResultBlock)
    assert created.is_file_update is False
    assert isinstance(replaced, TextEditorCodeExecutionStrReplaceResultBlock)
    assert (replaced.old_start, replaced.lines) == (2, ["gamma"])
    assert isinstance(viewed, TextEditorCodeExecutionViewResultBlock)
    assert (viewed.content, viewed.total_lines, viewed.file_type) == ("alpha\ngamma", 2, "text")
    assert isinstance(missing, TextEditorCodeExecutionToolResultErrorObject)
    assert missing.error_code == "file_not_found"
    uses = [block for block in message.content if isinstance(block, ServerToolUseBlock)]
    assert uses[0].name == "text_editor_code_execution"
    assert uses[0].input == {"command": "create", "path": "/mnt/data/notes.txt", "file_text": "alpha\nbeta\n"}
    bash = [block for block in message.content if isinstance(block, BashCodeExecutionToolResultBlock)]
    assert _bash_result(bash[0]).stdout == "alpha\ngamma\n"
