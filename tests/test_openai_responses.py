"""POST /v1/responses with the code_interpreter tool and the kernelgate/exec model, via the openai SDK."""

from __future__ import annotations

import base64
import json
import re
import time
from pathlib import Path
from typing import Any

import docker
import httpx
import openai
import pytest
from openai.types.responses import ResponseOutputMessage
from openai.types.responses.response_output_text import AnnotationContainerFileCitation as ContainerFileCitation

from .conftest import container_of, gateway_settings
from .responses import AUTO, OUTPUTS, calls, images, item, logs, message_text, tools_for


def test_a_call_and_an_answer_without_outputs_by_default(client: openai.OpenAI) -> None:
    """One code_interpreter_call (outputs null unless included) and one assistant message."""
    response = client.responses.create(model="kernelgate/exec", input="print(6 * 7)", tools=AUTO)
    assert re.fullmatch(r"resp_[0-9a-f]{48}", response.id)
    assert response.status == "completed"
    (call,) = calls(response)
    assert re.fullmatch(r"ci_[0-9a-f]{48}", call.id)
    assert (call.code, call.status, call.outputs) == ("print(6 * 7)", "completed", None)
    assert call.container_id.startswith("cntr_")
    message = response.output[-1]
    assert message.type == "message"
    assert message.id.startswith("msg_")
    assert response.output_text == "Output:\n\n```\n42\n```"
    assert response.usage is not None
    assert response.usage.total_tokens == 0


def test_include_fills_logs_in_order(client: openai.OpenAI) -> None:
    """With include, logs hold stdout, stderr, the last value and tracebacks in order."""
    code = "import sys\nprint('out')\nprint('err', file=sys.stderr)\n1 + 1"
    (call,) = calls(client.responses.create(model="kernelgate/exec", input=code, tools=AUTO, include=OUTPUTS))
    assert [o.model_dump() for o in call.outputs or []] == [{"type": "logs", "logs": "out\nerr\n2\n"}]


def test_an_exception_is_a_completed_call_with_the_traceback(client: openai.OpenAI) -> None:
    """As the hosted tool does: status completed, the traceback in the logs."""
    (call,) = calls(client.responses.create(model="kernelgate/exec", input="1/0", tools=AUTO, include=OUTPUTS))
    assert call.status == "completed"
    assert "ZeroDivisionError: division by zero" in logs(call)


def test_each_fenced_block_is_one_call_in_one_container(client: openai.OpenAI) -> None:
    """Fenced blocks run in order as separate calls sharing the kernel; prose around them is ignored."""
    text = "First:\n```python\nx = 20\n```\nthen\n```\nx + 22\n```\n"
    response = client.responses.create(model="kernelgate/exec", input=text, tools=AUTO, include=OUTPUTS)
    first, second = calls(response)
    assert (first.code, second.code) == ("x = 20", "x + 22")
    assert first.container_id == second.container_id
    assert logs(second) == "42\n"


def test_a_figure_comes_back_as_an_image_output(client: openai.OpenAI) -> None:
    """plt.show() gives an image output holding a PNG data URL."""
    code = "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()"
    (call,) = calls(client.responses.create(model="kernelgate/exec", input=code, tools=AUTO, include=OUTPUTS))
    (image,) = images(call)
    assert image.startswith("data:image/png;base64,")
    assert base64.b64decode(image.split(",", 1)[1]).startswith(b"\x89PNG")


def test_a_written_file_is_cited_and_downloadable(client: openai.OpenAI) -> None:
    """A CSV the code writes is linked in the answer with a container_file_citation over the sandbox: URL."""
    code = "import pandas as pd\npd.DataFrame({'a': [1, 2]}).to_csv('table.csv', index=False)"
    response = client.responses.create(model="kernelgate/exec", input=code, tools=AUTO)
    text = response.output_text
    (annotation,) = message_text(item(response, -1, ResponseOutputMessage)).annotations
    assert isinstance(annotation, ContainerFileCitation)
    assert text[annotation.start_index : annotation.end_index] == "sandbox:/mnt/data/table.csv"
    assert annotation.filename == "table.csv"
    assert annotation.file_id.startswith("cfile_")
    content = client.containers.files.content.retrieve(annotation.file_id, container_id=annotation.container_id)
    assert content.read() == b"a\n1\n2\n"


def test_previous_response_id_reuses_the_container_and_its_state(client: openai.OpenAI) -> None:
    """Auto mode keeps the conversation's container while it lives: variables carry over."""
    first = client.responses.create(model="kernelgate/exec", input="secret = 'kept'", tools=AUTO)
    second = client.responses.create(
        model="kernelgate/exec", input="secret", tools=AUTO, previous_response_id=first.id, include=OUTPUTS
    )
    assert calls(second)[0].container_id == calls(first)[0].container_id
    assert logs(calls(second)[0]) == "'kept'\n"
    assert second.previous_response_id == first.id


def test_an_explicit_container_is_used(client: openai.OpenAI) -> None:
    """A container id in the tool runs the code there, with its files."""
    container = client.containers.create(name="explicit")
    uploaded = client.containers.files.create(container.id, file=("in.txt", b"from upload"))
    code = f"print(open('{uploaded.path}').read())"
    tools = tools_for(container.id)
    (call,) = calls(client.responses.create(model="kernelgate/exec", input=code, tools=tools, include=OUTPUTS))
    assert call.container_id == container.id
    assert logs(call) == "from upload\n"
    client.containers.delete(container.id)


def test_file_ids_of_an_auto_container_are_readable(client: openai.OpenAI) -> None:
    """file_ids in the auto container are placed in /mnt/data before the code runs."""
    upload = client.files.create(file=("numbers.txt", b"1 2 3"), purpose="user_data")
    tools = tools_for({"type": "auto", "file_ids": [upload.id]})
    code = "import glob\nsum(map(int, open(glob.glob('/mnt/data/*-numbers.txt')[0]).read().split()))"
    (call,) = calls(client.responses.create(model="kernelgate/exec", input=code, tools=tools, include=OUTPUTS))
    assert logs(call) == "6\n"


def test_memory_limit_is_enforced_and_the_container_recovers(client: openai.OpenAI) -> None:
    """Past the 1g tier the call fails with the limit named; the next call in the container works."""
    tools = tools_for({"type": "auto", "memory_limit": "1g"})
    response = client.responses.create(
        model="kernelgate/exec", input="x = bytearray(1600 * 1024 * 1024)", tools=tools, include=OUTPUTS
    )
    (call,) = calls(response)
    assert call.status == "failed"
    assert "1g memory limit" in logs(call)
    after = client.responses.create(
        model="kernelgate/exec",
        input="'x' in globals()",
        tools=tools,
        previous_response_id=response.id,
        include=OUTPUTS,
    )
    assert calls(after)[0].container_id == call.container_id
    assert logs(calls(after)[0]) == "False\n"


def test_an_expired_container_is_a_400(client: openai.OpenAI, docker_client: docker.DockerClient) -> None:
    """Naming an expired container fails with OpenAI's 'Container is expired.' (a minute lasts 1 s here)."""
    container = client.containers.create(name="old", expires_after={"anchor": "last_active_at", "minutes": 1})
    deadline = time.monotonic() + 30
    while container_of(docker_client, container.id) is not None:  # Docker's view counts as no activity
        assert time.monotonic() < deadline, "the idle container was never removed"
        time.sleep(0.1)
    tools = tools_for(container.id)
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="kernelgate/exec", input="1", tools=tools)
    assert caught.value.body == {
        "message": "Container is expired.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    with pytest.raises(openai.NotFoundError):
        client.responses.create(
            model="kernelgate/exec", input="1", tools=[{"type": "code_interpreter", "container": "cntr_none"}]
        )


def test_stored_responses_can_be_retrieved_and_deleted(client: openai.OpenAI) -> None:
    """GET returns the stored response; DELETE removes it."""
    response = client.responses.create(model="kernelgate/exec", input="1", tools=AUTO, metadata={"k": "v"})
    fetched = client.responses.retrieve(response.id)
    assert fetched.model_dump() == response.model_dump()
    assert fetched.metadata == {"k": "v"}
    client.responses.delete(response.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "kernelgate/exec", "input": "1", "tools": AUTO, "frobnicate": True}, "frobnicate"),
        ({"model": "kernelgate/exec", "input": "1", "tools": AUTO, "include": ["nope"]}, "include"),
        ({"model": "gpt-nothing", "input": "1", "tools": AUTO}, "model"),
        ({"model": "kernelgate/exec", "input": "1", "tool_choice": {"type": "function", "name": "f"}}, "tool_choice"),
        ({"model": "kernelgate/exec", "input": "1", "tool_choice": {"type": "code_interpreter"}}, "tool_choice"),
        ({"model": "kernelgate/exec", "input": [{"type": "frob"}], "tools": AUTO}, "input[0]"),
        (
            {"model": "kernelgate/exec", "input": [{"role": "user", "content": [{"type": "x"}]}]},
            "input[0].content[0]",
        ),
        (
            {
                "model": "kernelgate/exec",
                "input": [{"role": "user", "content": [{"type": "input_file", "file_url": "http://x/y"}]}],
            },
            "input[0].content[0].file_url",
        ),
        ({"model": "kernelgate/exec", "input": "1", "text": {"format": {"type": "json_schema"}}}, "text.format.name"),
        ({"model": "kernelgate/exec", "input": "1", "tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"model": "kernelgate/exec", "input": [{"role": "robot", "content": "x"}], "tools": AUTO}, "input[0].role"),
        ({"model": "kernelgate/exec", "tools": AUTO}, "input"),
        (
            {"model": "kernelgate/exec", "input": "1", "tools": AUTO, "previous_response_id": "resp_x"},
            "previous_response_id",
        ),
    ],
)
def test_malformed_requests_are_400s(client: openai.OpenAI, body: dict[str, Any], param: str) -> None:
    """Unknown fields, bad values and tools kernelgate cannot serve get a 400 naming the field."""
    with pytest.raises(openai.BadRequestError) as caught:
        client.post("/responses", body=body, cast_to=httpx.Response)
    assert caught.value.param == param


def test_stream_helper_sees_the_events_in_order(client: openai.OpenAI) -> None:
    """responses.stream() accepts the stream and its final response matches the events."""
    with client.responses.stream(
        model="kernelgate/exec", input="print('streamed')", tools=AUTO, include=OUTPUTS
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [event.type for event in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.code_interpreter_call.in_progress",
    ]
    code_deltas = kinds.index("response.code_interpreter_call_code.done")
    assert set(kinds[4:code_deltas]) == {"response.code_interpreter_call_code.delta"}
    assert kinds[code_deltas : code_deltas + 4] == [
        "response.code_interpreter_call_code.done",
        "response.code_interpreter_call.interpreting",
        "response.code_interpreter_call.completed",
        "response.output_item.done",
    ]
    assert kinds[code_deltas + 4 : code_deltas + 6] == ["response.output_item.added", "response.content_part.added"]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert kinds.count("response.output_text.delta") > 1
    assert final.output_text == "Output:\n\n```\nstreamed\n```"
    assert [logs(call) for call in calls(final)] == ["streamed\n"]


def _sse(base_url: str, body: dict[str, Any]) -> Any:
    return httpx.stream("POST", f"{base_url}/v1/responses", json={**body, "stream": True}, timeout=60)


def _events(lines: Any) -> Any:
    for line in lines:
        if line.startswith("data: "):
            yield json.loads(line[6:])


def test_raw_stream_numbers_events_and_cites_after_the_text(openai_base_url: str) -> None:
    """sequence_number counts from 0 by one; annotation events follow the last text delta; no top-level error;
    GET returns the response the stream ended with."""
    code = "open('out.txt', 'w').write('x')\nprint('written')"
    body = {"model": "kernelgate/exec", "input": code, "tools": AUTO, "include": OUTPUTS}
    with _sse(openai_base_url, body) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = list(_events(response.iter_lines()))
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert all("error" not in e for e in events)
    kinds = [e["type"] for e in events]
    last_delta = max(i for i, kind in enumerate(kinds) if kind == "response.output_text.delta")
    assert kinds[last_delta + 1] == "response.output_text.annotation.added"
    assert events[-1]["response"]["status"] == "completed"
    final = events[-1]["response"]
    assert final["output"][0]["outputs"] == [{"type": "logs", "logs": "written\n"}]
    assert httpx.get(f"{openai_base_url}/v1/responses/{final['id']}", timeout=30).json() == final


def test_interpreting_goes_out_before_the_code_finishes(client: openai.OpenAI, openai_base_url: str) -> None:
    """The code waits for a file the test uploads only after it has seen the interpreting event."""
    container = client.containers.create(name="live")
    code = "import glob, time\nwhile not glob.glob('*-go.txt'):\n    time.sleep(0.05)\nprint('released')"
    tools = tools_for(container.id)
    body = {"model": "kernelgate/exec", "input": code, "tools": tools, "include": OUTPUTS}
    kinds = []
    with _sse(openai_base_url, body) as response:
        for event in _events(response.iter_lines()):
            kinds.append(event["type"])
            if event["type"] == "response.code_interpreter_call.interpreting":
                client.containers.files.create(container.id, file=("go.txt", b""))
            if event["type"] == "response.output_item.done":
                done = event["item"]
                break
    client.containers.delete(container.id)
    assert kinds.index("response.code_interpreter_call.interpreting") < kinds.index("response.output_item.done")
    assert done["outputs"] == [{"type": "logs", "logs": "released\n"}]


_SLEEPER = "import time\nstate = 'kept'\ntime.sleep(60)\nopen('finished', 'w').write('x')"


def _assert_interrupted_and_kept(client: openai.OpenAI, tools: Any) -> None:
    """The left _SLEEPER never finished, and the kernel kept its state: the next call runs at once."""
    follow = client.with_options(timeout=30).responses.create(
        model="kernelgate/exec",
        input="import os\n(os.path.exists('finished'), state)",
        tools=tools,
        include=OUTPUTS,
    )
    assert logs(calls(follow)[0]) == "(False, 'kept')\n"


def test_a_client_that_disconnects_gets_its_code_interrupted(client: openai.OpenAI, openai_base_url: str) -> None:
    """Leaving mid-execution interrupts the code: the container is free at once and the code never finished."""
    container = client.containers.create(name="abandoned")
    tools = tools_for(container.id)
    code = _SLEEPER
    with _sse(openai_base_url, {"model": "kernelgate/exec", "input": code, "tools": tools}) as response:
        for event in _events(response.iter_lines()):
            if event["type"] == "response.code_interpreter_call.interpreting":
                break
    _assert_interrupted_and_kept(client, tools)
    client.containers.delete(container.id)


def test_unstored_responses_are_not_kept(client: openai.OpenAI) -> None:
    """store=false: the response comes back but cannot be retrieved or continued."""
    response = client.responses.create(model="kernelgate/exec", input="1", tools=AUTO, store=False)
    assert response.to_dict()["store"] is False  # the SDK's Response has no `store` attribute
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)
    with pytest.raises(openai.BadRequestError) as caught:  # as OpenAI answers it
        client.responses.create(model="kernelgate/exec", input="2", tools=AUTO, previous_response_id=response.id)
    assert (caught.value.param, caught.value.code) == ("previous_response_id", "previous_response_not_found")
    assert f"Previous response with id '{response.id}' not found." in caught.value.message


def test_input_items_and_input_files(client: openai.OpenAI) -> None:
    """A list of message items with input_text and input_file parts: the file lands in the container."""
    upload = client.files.create(file=("words.txt", b"alpha beta"), purpose="user_data")
    code = "import glob\nopen(glob.glob('*-words.txt')[0]).read().split()"
    response = client.responses.create(
        model="kernelgate/exec",
        input=[
            {"role": "developer", "content": "Run it."},
            {
                "role": "user",
                "content": [{"type": "input_text", "text": code}, {"type": "input_file", "file_id": upload.id}],
            },
        ],
        tools=AUTO,
        include=OUTPUTS,
    )
    assert logs(calls(response)[0]) == "['alpha', 'beta']\n"


def test_replayed_output_items_keep_the_container(client: openai.OpenAI) -> None:
    """Without previous_response_id, earlier code_interpreter_call items sent back as input select the container."""
    first = client.responses.create(model="kernelgate/exec", input="kept = 1", tools=AUTO)
    replay: list[Any] = [output.model_dump(exclude_none=True) for output in first.output]
    second = client.responses.create(
        model="kernelgate/exec",
        input=[*replay, {"role": "user", "content": "kept + 1"}],
        tools=AUTO,
        include=OUTPUTS,
    )
    assert calls(second)[0].container_id == calls(first)[0].container_id
    assert logs(calls(second)[0]) == "2\n"


def test_a_timeout_is_an_incomplete_call(data_dir: Path) -> None:
    """Past KERNELGATE_EXECUTION_TIMEOUT the call is 'incomplete' and its logs say what happened."""
    from gateway.testing import serve

    from .conftest import sdk_for

    with serve(gateway_settings(data_dir, execution_timeout=1)) as base_url:
        sdk = sdk_for(base_url)
        response = sdk.responses.create(
            model="kernelgate/exec",
            input="import time\nprint('started')\ntime.sleep(30)",
            tools=AUTO,
            include=OUTPUTS,
        )
    (call,) = calls(response)
    assert call.status == "incomplete"
    assert logs(call).startswith("started\n")
    assert "timed out after 1 s" in logs(call)
    assert response.status == "completed"


def test_a_failure_mid_stream_ends_with_response_failed(client: openai.OpenAI, openai_base_url: str) -> None:
    """The container deleted under a running call: the stream ends with response.failed, never a bare error key;
    the failed response is kept as it ended."""
    container = client.containers.create(name="pulled")
    tools = tools_for(container.id)
    body = {"model": "kernelgate/exec", "input": "import time\ntime.sleep(30)", "tools": tools}
    with _sse(openai_base_url, body) as response:
        events = []
        for event in _events(response.iter_lines()):
            events.append(event)
            if event["type"] == "response.code_interpreter_call.interpreting":
                client.containers.delete(container.id)
    assert events[-1]["type"] == "response.failed"
    assert events[-1]["response"]["status"] == "failed"
    assert events[-1]["response"]["error"]["message"]
    assert all("error" not in event for event in events)
    stored = httpx.get(f"{openai_base_url}/v1/responses/{events[-1]['response']['id']}", timeout=30)
    assert stored.json() == events[-1]["response"]


def test_a_client_that_gives_up_on_a_full_response_gets_its_code_interrupted(
    client: openai.OpenAI, openai_base_url: str
) -> None:
    """Not streaming either: a client that times out and leaves gets its execution interrupted."""
    container = client.containers.create(name="impatient")
    tools = tools_for(container.id)
    code = _SLEEPER
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{openai_base_url}/v1/responses",
            json={"model": "kernelgate/exec", "input": code, "tools": tools},
            timeout=2,
        )
    _assert_interrupted_and_kept(client, tools)
    client.containers.delete(container.id)


@pytest.mark.parametrize(("param", "value"), [("max_output_tokens", 8), ("temperature", 3), ("top_p", 1.5)])
def test_out_of_range_settings_are_refused(client: openai.OpenAI, param: str, value: float) -> None:
    """As OpenAI: max_output_tokens under 16, temperature over 2, top_p over 1 are 400s naming the parameter."""
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="kernelgate/exec", input="1", tools=AUTO, **{param: value})  # type: ignore[call-overload]
    assert caught.value.body["param"] == param  # type: ignore[index]


def test_a_function_output_without_its_call_is_a_400(client: openai.OpenAI) -> None:
    """As OpenAI: an output whose call_id no function_call carries is refused, naming the id."""
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(
            model="kernelgate/exec",
            tools=AUTO,
            input=[{"type": "function_call_output", "call_id": "call_nowhere", "output": "42"}],
        )
    assert caught.value.message.endswith("No tool call found for function call output with call_id call_nowhere.")
    assert caught.value.body["param"] == "input"  # type: ignore[index]
