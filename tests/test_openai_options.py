"""The Responses API around the tool, as agent frameworks use it, through `kernelgate/exec`: tools other
than the code interpreter or none, tool_choice, structured output, max_tool_calls, item references,
files and images in the input, null values, and OpenAI's error texts."""

from __future__ import annotations

import base64
import io
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from pydantic import BaseModel

from gateway.testing import serve

from .conftest import gateway_settings, sdk_for
from .responses import AUTO, OUTPUTS, RUNS_UNTIL_STOPPED, calls, logs, tools_for, wait_until_started


def _message(error: openai.APIStatusError) -> str:
    """The error body's message, as OpenAI words it (the SDK's own `message` adds the status)."""
    assert isinstance(error.body, dict)
    return str(error.body["message"])


ECHO_TOOL: Any = {"type": "function", "name": "lookup", "parameters": {"type": "object", "properties": {}}}


def test_without_the_code_interpreter_nothing_runs_and_no_container_is_made(client: openai.OpenAI) -> None:
    """Only function tools, or none: a plain model call (kernelgate/exec repeats the message)."""
    before = {container.id for container in client.containers.list()}
    for tools in ([], [ECHO_TOOL]):
        response = client.responses.create(model="kernelgate/exec", input="print('not run')", tools=tools)
        assert (response.status, response.output_text) == ("completed", "print('not run')")
        assert calls(response) == []
    assert {container.id for container in client.containers.list()} == before


def test_tool_choice_none_runs_nothing_and_code_interpreter_runs(client: openai.OpenAI) -> None:
    none = client.responses.create(model="kernelgate/exec", input="print(1)", tools=AUTO, tool_choice="none")
    assert (calls(none), none.output_text, none.tool_choice) == ([], "print(1)", "none")
    forced = client.responses.create(
        model="kernelgate/exec", input="print(2)", tools=AUTO, tool_choice={"type": "code_interpreter"}, include=OUTPUTS
    )
    assert [logs(call) for call in calls(forced)] == ["2\n"]


class Answer(BaseModel):
    total: int
    unit: str


def test_structured_output_parses(client: openai.OpenAI) -> None:
    """responses.parse(text_format=...): the code prints JSON, and the answer is it, parsed."""
    code = "import json\nprint(json.dumps({'total': sum(range(10)), 'unit': 'apples'}))"
    parsed = client.responses.parse(model="kernelgate/exec", input=code, tools=AUTO, text_format=Answer)
    assert parsed.output_parsed == Answer(total=45, unit="apples")
    assert parsed.text is not None
    assert parsed.text.format is not None
    assert parsed.text.format.type == "json_schema"


def test_max_tool_calls_completes_with_an_answer(client: openai.OpenAI) -> None:
    """Past max_tool_calls the calls stop and the response completes with the model's answer."""
    blocks = "```python\nprint('one')\n```\n```python\nprint('two')\n```"
    response = client.responses.create(
        model="kernelgate/exec", input=blocks, tools=AUTO, max_tool_calls=1, include=OUTPUTS
    )
    assert (response.status, response.incomplete_details) == ("completed", None)
    assert [logs(call) for call in calls(response)] == ["one\n"]
    assert response.output_text == "Output:\n\n```\none\n```"


def test_item_references_continue_the_conversation(client: openai.OpenAI) -> None:
    """Earlier turns replayed as item_reference (as the Vercel AI SDK does): same container, same variables."""
    first = client.responses.create(model="kernelgate/exec", input="x = 41", tools=AUTO)
    references: Any = [{"type": "item_reference", "id": item.id} for item in first.output]
    follow = client.responses.create(
        model="kernelgate/exec",
        input=[{"role": "user", "content": "x = 41"}, *references, {"role": "user", "content": "print(x + 1)"}],
        tools=AUTO,
        include=OUTPUTS,
    )
    (call,) = calls(follow)
    assert (call.container_id, logs(call)) == (calls(first)[0].container_id, "42\n")
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(
            model="kernelgate/exec", input=[{"type": "item_reference", "id": "msg_nope"}], tools=AUTO
        )
    assert (caught.value.param, _message(caught.value)) == ("input[0]", "Item with id 'msg_nope' not found.")


def test_input_files_land_once_and_uploaded_images_are_read(client: openai.OpenAI) -> None:
    """input_file (file_data or file_id) lands in /mnt/data once per container, however often it is replayed."""
    data = base64.b64encode(b"a,b\n1,2\n").decode()
    part: Any = {"type": "input_file", "filename": "t.csv", "file_data": f"data:text/csv;base64,{data}"}
    uploaded = client.files.create(file=("notes.txt", io.BytesIO(b"hello")), purpose="user_data")
    by_id: Any = {"type": "input_file", "file_id": uploaded.id}
    message: Any = {"role": "user", "content": [part, by_id, {"type": "input_text", "text": "x = 1"}]}
    first = client.responses.create(model="kernelgate/exec", input=[message], tools=AUTO)
    container_id = calls(first)[0].container_id
    look = "import glob; print(sorted(p.split('-', 1)[1] for p in glob.glob('*-*')))"
    again: Any = [message, {"role": "user", "content": look}]
    follow = client.responses.create(
        model="kernelgate/exec", input=again, tools=AUTO, include=OUTPUTS, previous_response_id=first.id
    )
    assert calls(follow)[0].container_id == container_id
    assert logs(calls(follow)[0]) == "['notes.txt', 't.csv']\n"


def test_null_values_and_replayed_calls_in_progress_are_taken(client: openai.OpenAI, openai_base_url: str) -> None:
    body: dict[str, Any] = {
        "model": "kernelgate/exec",
        "input": [
            {
                "type": "code_interpreter_call",
                "id": "ci_replayed",
                "code": "y = 1",
                "container_id": client.containers.create(name="replay").id,
                "outputs": None,
                "status": "interpreting",
            },
            {"role": "user", "content": "print('ok')"},
        ],
        "tools": AUTO,
        "store": None,
        "stream": None,
        "parallel_tool_calls": None,
        "include": OUTPUTS,
    }
    answer = httpx.post(f"{openai_base_url}/v1/responses", json=body, timeout=60)
    assert answer.status_code == 200, answer.text
    response = answer.json()
    assert (response["store"], response["parallel_tool_calls"]) == (True, True)
    assert (response["temperature"], response["top_p"], response["tool_choice"]) == (1.0, 1.0, "auto")


def test_error_texts_are_openais(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as unknown:
        client.post(
            "/responses", body={"model": "kernelgate/exec", "input": "1", "frobnicate": 1}, cast_to=httpx.Response
        )
    assert unknown.value.body == {
        "message": "Unknown parameter: 'frobnicate'.",
        "type": "invalid_request_error",
        "param": "frobnicate",
        "code": "unknown_parameter",
    }
    with pytest.raises(openai.NotFoundError) as missing:
        client.responses.retrieve("resp_nope")
    assert _message(missing.value) == "Response with id 'resp_nope' not found."
    with pytest.raises(openai.BadRequestError) as bad:
        client.post(
            "/responses", body={"model": "kernelgate/exec", "input": [{"type": "frob"}]}, cast_to=httpx.Response
        )
    assert "https://" not in _message(bad.value)
    assert bad.value.param == "input[0]"


def test_new_auto_file_ids_reach_a_reused_container(client: openai.OpenAI) -> None:
    first = client.responses.create(model="kernelgate/exec", input="x = 1", tools=AUTO)
    uploaded = client.files.create(file=("later.txt", io.BytesIO(b"later")), purpose="user_data")
    tools: Any = [{"type": "code_interpreter", "container": {"type": "auto", "file_ids": [uploaded.id]}}]
    follow = client.responses.create(
        model="kernelgate/exec",
        input="import glob; print([p.split('-', 1)[1] for p in glob.glob('*-later.txt')])",
        tools=tools,
        include=OUTPUTS,
        previous_response_id=first.id,
    )
    (call,) = calls(follow)
    assert (call.container_id, logs(call)) == (calls(first)[0].container_id, "['later.txt']\n")


def test_input_items_lists_what_the_request_sent(client: openai.OpenAI) -> None:
    """GET /v1/responses/{id}/input_items: the request's own items, newest first by default, paged."""
    sent: Any = [
        {"role": "developer", "content": "be terse"},
        {"role": "user", "content": "print('a')"},
    ]
    response = client.responses.create(model="kernelgate/exec", input=sent, tools=AUTO)
    listed = client.responses.input_items.list(response.id)
    assert [(item.type, getattr(item, "role", None)) for item in listed.data] == [
        ("message", "user"),
        ("message", "developer"),
    ]
    assert all(item.id for item in listed.data)
    first = client.responses.input_items.list(response.id, order="asc", limit=1)
    assert (len(first.data), first.has_more, getattr(first.data[0], "role", None)) == (1, True, "developer")
    rest = client.responses.input_items.list(response.id, order="asc", after=first.data[0].id)
    assert [getattr(item, "role", None) for item in rest.data] == ["user"]
    assert not rest.has_more


def test_a_background_response_is_polled_and_cancelled(client: openai.OpenAI) -> None:
    """background=true answers at once; GET polls it to the end; cancel interrupts running code."""
    started = client.responses.create(
        model="kernelgate/exec", input="print(sum(range(5)))", tools=AUTO, background=True, include=OUTPUTS
    )
    assert (started.status, started.background) == ("in_progress", True)
    until_done = [client.responses.retrieve(started.id)]
    while until_done[-1].status == "in_progress":
        until_done.append(client.responses.retrieve(started.id))
    done = until_done[-1]
    assert (done.status, done.background, [logs(call) for call in calls(done)]) == ("completed", True, ["10\n"])

    container = client.containers.create(name="background")
    slow = client.responses.create(
        model="kernelgate/exec", input=RUNS_UNTIL_STOPPED, tools=tools_for(container.id), background=True
    )

    def still_running() -> None:
        assert client.responses.retrieve(slow.id).status == "in_progress"

    wait_until_started(client, container.id, still_running)
    cancelled = client.responses.cancel(slow.id)
    assert cancelled.status == "cancelled"
    assert client.responses.retrieve(slow.id).status == "cancelled"
    after = client.responses.create(
        model="kernelgate/exec", input="print('after')", tools=tools_for(container.id), include=OUTPUTS
    )
    assert [logs(call) for call in calls(after)] == ["after\n"]  # the container is free: the loop was stopped
    with pytest.raises(openai.BadRequestError):
        client.responses.cancel(client.responses.create(model="kernelgate/exec", input="1", tools=AUTO).id)


def test_a_background_response_streams_to_its_end(client: openai.OpenAI) -> None:
    with client.responses.create(
        model="kernelgate/exec", input="print('bg')", tools=AUTO, background=True, stream=True, include=OUTPUTS
    ) as stream:
        events = list(stream)
    assert events[0].type == "response.created"
    assert events[-1].type == "response.completed"
    final = client.responses.retrieve(events[-1].response.id)
    assert (final.status, [logs(call) for call in calls(final)]) == ("completed", ["bg\n"])


def test_a_lost_background_stream_resumes_where_it_stopped(client: openai.OpenAI) -> None:
    """GET /v1/responses/{id}?stream=true&starting_after=n: the events after n and the live ones to the
    end, numbered on from where the client stopped; after the end, the whole stream again."""
    code = "import time\nprint('one', flush=True)\ntime.sleep(1.5)\nprint('two')"
    first = []
    with client.responses.create(
        model="kernelgate/exec", input=code, tools=AUTO, background=True, stream=True, include=OUTPUTS
    ) as stream:
        for event in stream:
            first.append(event)
            if event.type == "response.code_interpreter_call.interpreting":
                break  # the client goes away while the code runs
    assert first[0].type == "response.created"
    response_id, stopped = first[0].response.id, first[-1].sequence_number
    resumed = list(client.responses.retrieve(response_id, stream=True, starting_after=stopped))
    assert [event.sequence_number for event in resumed] == list(range(stopped + 1, stopped + 1 + len(resumed)))
    assert resumed[-1].type == "response.completed"
    assert [logs(call) for call in calls(resumed[-1].response)] == ["one\ntwo\n"]
    whole = list(client.responses.retrieve(response_id, stream=True))
    assert [event.sequence_number for event in whole] == list(range(len(whole)))
    assert [event.model_dump() for event in whole] == [event.model_dump() for event in [*first, *resumed]]
    plain = client.responses.create(model="kernelgate/exec", input="1", tools=AUTO)
    with pytest.raises(openai.BadRequestError, match="background=true"):
        client.responses.retrieve(plain.id, stream=True)


def test_a_background_stream_is_replayed_after_a_restart(data_dir: Path) -> None:
    """Its live events are gone with the process: the stored response, item by item, numbered from 0."""
    settings = gateway_settings(data_dir)
    with serve(settings, purge=False) as base_url:
        sdk = sdk_for(base_url)
        started = sdk.responses.create(
            model="kernelgate/exec", input="print('kept')", tools=AUTO, background=True, include=OUTPUTS
        )
        while sdk.responses.retrieve(started.id).status == "in_progress":
            time.sleep(0.05)
    with serve(settings) as base_url:
        replayed = list(sdk_for(base_url).responses.retrieve(started.id, stream=True))
        tail = list(sdk_for(base_url).responses.retrieve(started.id, stream=True, starting_after=3))
    kinds = [event.type for event in replayed]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert kinds[2:-1] == ["response.output_item.added", "response.output_item.done"] * ((len(kinds) - 3) // 2)
    assert [event.sequence_number for event in replayed] == list(range(len(replayed)))
    assert [logs(call) for call in calls(replayed[-1].response)] == ["kept\n"]  # type: ignore[union-attr]
    assert [event.model_dump() for event in tail] == [event.model_dump() for event in replayed[4:]]


def test_a_conversation_carries_items_and_the_container(client: openai.OpenAI) -> None:
    """The Conversations API, as OpenAIConversationsSession uses it: responses in a conversation see its
    items, add theirs, and keep the kernel's variables."""
    conversation = client.conversations.create(
        items=[{"type": "message", "role": "developer", "content": "be terse"}], metadata={"who": "test"}
    )
    assert (conversation.object, conversation.metadata) == ("conversation", {"who": "test"})
    first = client.responses.create(model="kernelgate/exec", input="x = 41", tools=AUTO, conversation=conversation.id)
    assert first.conversation is not None
    assert first.conversation.id == conversation.id
    second = client.responses.create(
        model="kernelgate/exec", input="print(x + 1)", tools=AUTO, include=OUTPUTS, conversation={"id": conversation.id}
    )
    assert [logs(call) for call in calls(second)] == ["42\n"]
    listed = client.conversations.items.list(conversation.id, order="asc")
    kinds = [(item.type, getattr(item, "role", None)) for item in listed.data]
    assert kinds == [
        ("message", "developer"),
        ("message", "user"),
        ("code_interpreter_call", None),
        ("message", "assistant"),
        ("message", "user"),
        ("code_interpreter_call", None),
        ("message", "assistant"),
    ]
    added = client.conversations.items.create(conversation.id, items=[{"role": "user", "content": "note"}])
    note_id = added.data[0].id
    assert note_id is not None
    assert client.conversations.items.retrieve(note_id, conversation_id=conversation.id).id == note_id
    client.conversations.items.delete(note_id, conversation_id=conversation.id)
    assert len(client.conversations.items.list(conversation.id).data) == 7
    updated = client.conversations.update(conversation.id, metadata={"who": "else"})
    assert updated.metadata == {"who": "else"}
    with pytest.raises(openai.BadRequestError):
        client.responses.create(
            model="kernelgate/exec", input="1", conversation=conversation.id, previous_response_id=first.id
        )
    assert client.conversations.delete(conversation.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.conversations.retrieve(conversation.id)
