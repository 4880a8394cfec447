"""One test body, four upstream APIs: Chat Completions, Responses, Anthropic Messages and Gemini.

Each test runs once per API against the fake upstream speaking it, with the official openai SDK as the
client, and asserts the same things of what the client got: the client cannot tell which API served it
except by the text. What the fake saw is read through `Seen`, in terms all four APIs share.
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.types.responses import ResponseCodeInterpreterToolCall, ResponseOutputMessage

from gateway import Settings
from gateway.testing import serve

from . import fake_gemini
from .conftest import IMAGE, sdk_for, upstream_settings
from .fake_script import path_for
from .fake_upstream import APIS, Api, FakeUpstream, Reply, fake_upstream
from .responses import AUTO, OUTPUTS, calls, function_call, function_output, item, logs, message_text

PNG_PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
PLOT = "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()"
LOOKUP: Any = {
    "type": "function",
    "name": "lookup",
    "description": "Look a word up.",
    "parameters": {"type": "object", "properties": {"word": {"type": "string"}}, "required": ["word"]},
}


@dataclass
class Served:
    api: str
    fake: FakeUpstream
    client: openai.OpenAI


@pytest.fixture(scope="module", params=APIS)
def gateway(request: pytest.FixtureRequest, test_root: Path) -> Iterator[tuple[str, FakeUpstream, str]]:
    """A fake upstream of one API, and a gateway whose default upstream it is."""
    api = request.param
    with fake_upstream() as (fake, _):
        settings = upstream_settings(fake, api, test_root / f"upstream-{api}", upstream_timeout=5, max_iterations=3)
        with serve(settings) as base_url:
            yield api, fake, base_url


@pytest.fixture
def served(gateway: tuple[str, FakeUpstream, str]) -> Iterator[Served]:
    api, fake, base_url = gateway
    fake.reset()
    yield Served(api, fake, sdk_for(base_url))
    assert not fake.problems, "requests broke the upstream API's rules:\n" + "\n".join(fake.problems)


def test_a_call_runs_and_its_result_goes_back(served: Served) -> None:
    """The python call runs in the sandbox; its output goes back to the model, then the answer comes."""
    served.fake.script = [Reply(code="print(6 * 7)"), Reply(text="The answer is 42.")]
    response = served.client.responses.create(
        model="test-model", instructions="Be brief.", input="What is 6 * 7?", tools=AUTO, include=OUTPUTS
    )
    call, message = item(response, 0, ResponseCodeInterpreterToolCall), item(response, 1, ResponseOutputMessage)
    assert (call.type, call.code, call.status) == ("code_interpreter_call", "print(6 * 7)", "completed")
    assert logs(call) == "42\n"
    assert message.type == "message"
    assert response.output_text == "The answer is 42."
    first, second = served.fake.seen
    assert (first.model, first.tools, first.system) == ("test-model", ["python"], "Be brief.")
    assert second.results == ["42\n"]
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (20, 10)


def test_several_calls_share_one_container(served: Served) -> None:
    """Kernel state carries from one call to the next; every result reaches the model in order."""
    served.fake.script = [Reply(code="x = 40"), Reply(code="x + 2"), Reply(text="done")]
    response = served.client.responses.create(model="m", input="go", tools=AUTO, include=OUTPUTS)
    first, second = calls(response)
    assert first.container_id == second.container_id
    assert logs(second) == "42\n"
    assert served.fake.seen[-1].results == ["(no output)", "42\n"]


def _collapsed(kinds: list[str]) -> list[str]:
    return [kind for kind, _ in itertools.groupby(kinds)]


def test_the_stream_is_the_same_whichever_api(served: Served) -> None:
    """Code and text arrive as deltas, in the hosted tool's event order, whichever API streamed them."""
    code = 'print("a \\"quoted\\" line")\nprint(1)'
    served.fake.script = [Reply(code=code, pieces=9), Reply(text="All printed.", pieces=3)]
    with served.client.responses.stream(model="m", input="go", tools=AUTO) as stream:
        events = list(stream)
    deltas = [e.delta for e in events if e.type == "response.code_interpreter_call_code.delta"]
    assert "".join(deltas) == code
    if served.api != "gemini":  # Gemini sends a call whole: one delta
        assert len(deltas) > 1
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "All printed."
    assert _collapsed([e.type for e in events]) == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.code_interpreter_call.in_progress",
        "response.code_interpreter_call_code.delta",
        "response.code_interpreter_call_code.done",
        "response.code_interpreter_call.interpreting",
        "response.code_interpreter_call.completed",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]


def test_text_before_a_call_comes_first(served: Served) -> None:
    """A model that says something, then calls the tool, gets a message item before the call item."""
    served.fake.script = [Reply(text="Let me compute.", code="print(2 ** 10)"), Reply(text="1024.")]
    with served.client.responses.stream(model="m", input="go", tools=AUTO, include=OUTPUTS) as stream:
        added = [e.output_index for e in stream if e.type == "response.output_item.added"]
        response = stream.get_final_response()
    assert [item.type for item in response.output] == ["message", "code_interpreter_call", "message"]
    assert added == [0, 1, 2]
    assert message_text(item(response, 0, ResponseOutputMessage)).text == "Let me compute."
    assert logs(calls(response)[0]) == "1024\n"
    assert response.output_text == "Let me compute.1024."


def test_an_upstream_error_before_any_output_is_an_http_error(served: Served) -> None:
    """Nothing said yet: an upstream's 400 is a 502 the SDK must not retry, naming the upstream's status."""
    served.fake.script = [Reply(status=400)]
    with pytest.raises(openai.InternalServerError) as caught:
        served.client.responses.create(model="m", input="hi", tools=AUTO)
    assert caught.value.status_code == 502
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert "failed with 400" in caught.value.message
    assert "scripted 400" in caught.value.message


@pytest.mark.parametrize(("status", "code"), [(500, "server_error"), (429, "rate_limit_exceeded")])
def test_an_upstream_error_after_output_fails_the_response(served: Served, status: int, code: str) -> None:
    """Once the response has output, an upstream failure (after its retries) ends it as failed, with OpenAI's
    error code and the upstream's status in the message; it is stored as it ended."""
    served.fake.script = [Reply(code="print('ran')"), *[Reply(status=status)] * 3]
    response = served.client.responses.create(model="m", input="hi", tools=AUTO, include=OUTPUTS)
    assert response.status == "failed"
    assert response.error is not None
    assert (response.error.code, logs(calls(response)[0])) == (code, "ran\n")
    assert f"failed with {status}" in response.error.message
    assert served.client.responses.retrieve(response.id).error == response.error


def test_a_busy_upstream_is_retried(served: Served) -> None:
    """A 503 is retried with backoff before anything fails."""
    served.fake.script = [Reply(status=503), Reply(text="fine after all")]
    response = served.client.responses.create(model="m", input="hi", tools=AUTO)
    assert (response.status, response.output_text) == ("completed", "fine after all")
    assert len(served.fake.requests) == 2


def test_an_upstream_is_retried_twice_then_the_response_fails(served: Served) -> None:
    """Exactly two retries: a third 503 is the client's 503, and the reply after it is never asked for."""
    served.fake.script = [Reply(status=503)] * 3 + [Reply(text="too late")]
    with pytest.raises(openai.InternalServerError) as caught:
        served.client.responses.create(model="m", input="hi", tools=AUTO)
    assert caught.value.status_code == 503
    assert len(served.fake.requests) == 3


def test_client_function_tools_pass_through(served: Served) -> None:
    """The model sees the client's function tool; its call ends the response; the output continues it."""
    served.fake.script = [
        Reply(code="word = 'kernel'"),
        Reply(function=("lookup", '{"word": "kernel"}')),
        Reply(text="ok"),
    ]
    first = served.client.responses.create(model="m", input="define it", tools=[*AUTO, LOOKUP])
    assert [output.type for output in first.output] == ["code_interpreter_call", "function_call"]
    call = function_call(first)
    assert (call.name, call.arguments) == ("lookup", '{"word": "kernel"}')
    assert served.fake.seen[0].tools == ["python", "lookup"]
    second = served.client.responses.create(
        model="m",
        previous_response_id=first.id,
        tools=[*AUTO, LOOKUP],
        input=[function_output(call.call_id, "the core of a system")],
    )
    assert second.output_text == "ok"
    assert served.fake.seen[-1].results == ["(no output)", "the core of a system"]


def test_figures_go_back_where_the_api_takes_images(served: Served) -> None:
    """Anthropic and Gemini get the figure as an image in the tool result; OpenAI-compatible servers, a mention."""
    served.fake.script = [Reply(code=PLOT), Reply(text="A line.")]
    served.client.responses.create(model="m", input="plot", tools=AUTO)
    follow = served.fake.seen[1]
    takes_images = served.api in ("anthropic", "gemini")
    assert follow.images == (1 if takes_images else 0)
    assert ("displayed 1 image" in follow.results[0]) is not takes_images


_NOT_RUN = "Not run: the model's turn was cut short (max_output_tokens) before this code was complete.\n"


def test_an_answer_cut_at_the_token_limit_runs_no_code(served: Served) -> None:
    """Cut at max_output_tokens, a half-written call does not run and the response is incomplete."""
    # Half of the call's arguments is runnable code that would print and write a file.
    code = "open('ran.txt', 'w').write('x')\nprint('ran')\n" + "# more to come\n" * 10
    served.fake.script = [Reply(code=code, cut=True)]
    response = served.client.responses.create(model="m", input="go", tools=AUTO, include=OUTPUTS, max_output_tokens=100)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert served.fake.seen[0].max_tokens == 100
    assert len(served.fake.requests) == 1
    if served.api == "gemini":  # Gemini sends a call whole or not at all: a cut answer has none
        assert calls(response) == []
        return
    (call,) = calls(response)
    assert call.status == "incomplete"
    assert "print('ran')" in (call.code or "")
    assert code.startswith(call.code or "-")
    assert call.code != code
    assert [output.model_dump() for output in call.outputs or []] == [{"type": "logs", "logs": _NOT_RUN}]
    files = served.client.containers.files.list(call.container_id)
    assert [file.path for file in files] == []


def test_a_refusal_ends_the_response_with_content_filter(served: Served) -> None:
    """A refusal or safety stop from any API ends the response as incomplete with reason content_filter."""
    served.fake.script = [Reply(text="I can't help with", refused=True)]
    response = served.client.responses.create(model="m", input="something bad", tools=AUTO)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "content_filter"
    assert response.output_text == "I can't help with"


def test_a_stream_the_api_would_not_send_is_a_502(served: Served) -> None:
    """A stream that is not the API's events, before any output, is a 502 that says so (never a bare 500)."""
    served.fake.script = [Reply(garbage=True)]
    with pytest.raises(openai.InternalServerError) as caught:
        served.client.responses.create(model="m", input="hi", tools=AUTO)
    assert caught.value.status_code == 502
    assert "sent something kernelgate cannot read" in caught.value.message


@pytest.mark.parametrize("api", APIS)
def test_an_upstream_asked_not_to_stream(data_dir: Path, api: Api) -> None:
    """With stream = false the whole answer is asked for, at the API's non-streaming URL; the client sees the same."""
    with fake_upstream() as (fake, _):
        settings = upstream_settings(fake, api, data_dir, upstream_stream=False)
        with serve(settings) as base_url:
            fake.script = [Reply(code="print('whole')"), Reply(text="Printed.")]
            response = sdk_for(base_url).responses.create(model="m", input="go", tools=AUTO, include=OUTPUTS)
    (call,) = calls(response)
    assert (call.code, logs(call)) == ("print('whole')", "whole\n")
    assert response.output_text == "Printed."
    assert [(seen.path, bool(seen.body.get("stream"))) for seen in fake.seen] == [
        (path_for(api, streamed=False), False)
    ] * 2
    assert response.usage is not None
    assert response.usage.total_tokens == 30


def test_gemini_calls_go_back_with_their_signatures_and_side_by_side(data_dir: Path) -> None:
    """Gemini's thought signature returns with its call; calls made side by side return in one model turn."""
    with fake_upstream() as (fake, _):
        settings = upstream_settings(fake, "gemini", data_dir)
        with serve(settings) as base_url:
            fake.script = [Reply(code="a = 1", parallel=("b = 2",)), Reply(code="print(a + b)"), Reply(text="3")]
            response = sdk_for(base_url).responses.create(model="m", input="add", tools=AUTO, include=OUTPUTS)
    assert [c.code for c in calls(response)] == ["a = 1", "b = 2", "print(a + b)"]
    assert logs(calls(response)[-1]) == "3\n"
    last = fake.requests[-1]["contents"]
    side_by_side, answers, alone, answer = last[1:5]
    assert [p["functionCall"]["args"]["code"] for p in side_by_side["parts"]] == ["a = 1", "b = 2"]
    assert side_by_side["parts"][0]["thoughtSignature"] == fake_gemini.signature(1)
    assert "thoughtSignature" not in side_by_side["parts"][1]
    assert len(answers["parts"]) == 2
    assert alone["parts"][0]["thoughtSignature"] == fake_gemini.signature(2)
    assert answer["parts"][0]["functionResponse"]["response"] == {"output": "3\n"}


def test_openai_anthropic_and_gemini_prefixes_use_the_providers_own_variables(data_dir: Path) -> None:
    """`OpenAI/`, `Anthropic/` and `Gemini/` (HasteKit's names) need no providers file: their own key and base
    URL variables (GOOGLE_API_KEY wins); OpenAI's is its Responses API."""
    with fake_upstream() as (fake, _):
        environ = {
            "KERNELGATE_DATA_DIR": str(data_dir),
            "KERNELGATE_IMAGE": IMAGE,
            "ANTHROPIC_API_KEY": str(fake.key),
            "ANTHROPIC_BASE_URL": fake.url_for("anthropic"),
            "GEMINI_API_KEY": "a key GOOGLE_API_KEY overrides",
            "GOOGLE_API_KEY": str(fake.key),
            "GOOGLE_GEMINI_BASE_URL": fake.url_for("gemini"),
            "OPENAI_API_KEY": str(fake.key),
            "OPENAI_BASE_URL": fake.url_for("responses"),
        }
        with serve(Settings.from_env(environ)) as base_url:
            client = sdk_for(base_url)
            fake.script = [Reply(text="from claude"), Reply(text="from gemini"), Reply(text="from gpt")]
            claude = client.responses.create(model="Anthropic/claude-sonnet-4-6", input="hi", tools=AUTO)
            gemini = client.responses.create(model="gemini/gemini-2.5-flash", input="hi", tools=AUTO)
            gpt = client.responses.create(model="OpenAI/gpt-4.1-mini", input="hi", tools=AUTO)
    assert (claude.output_text, gemini.output_text, gpt.output_text) == ("from claude", "from gemini", "from gpt")
    assert (claude.model, gemini.model) == ("Anthropic/claude-sonnet-4-6", "gemini/gemini-2.5-flash")
    assert [(seen.api, seen.model) for seen in fake.seen] == [
        ("anthropic", "claude-sonnet-4-6"),
        ("gemini", "gemini-2.5-flash"),
        ("responses", "gpt-4.1-mini"),
    ]


def test_a_provider_without_its_key_is_a_clear_400(client: openai.OpenAI) -> None:
    """Asking for `Anthropic/...` with no ANTHROPIC_API_KEY names the variable to set."""
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="Anthropic/claude-sonnet-4-6", input="hi", tools=AUTO)
    assert caught.value.body["param"] == "model"  # type: ignore[index]
    assert "ANTHROPIC_API_KEY" in caught.value.message
    with pytest.raises(openai.BadRequestError) as openai_key:
        client.responses.create(model="OpenAI/gpt-4.1-mini", input="hi", tools=AUTO)
    assert "OPENAI_API_KEY" in openai_key.value.message


def test_container_settings_apply_whichever_model(served: Served) -> None:
    """file_ids land in /mnt/data, the memory limit is real and told to the model, a named container keeps state."""
    upload = served.client.files.create(file=("numbers.txt", b"1 2 3"), purpose="user_data")
    auto = {"type": "auto", "memory_limit": "1g", "file_ids": [upload.id]}
    read = "import glob\nprint(sum(map(int, open(glob.glob('/mnt/data/*-numbers.txt')[0]).read().split())))"
    served.fake.script = [Reply(code=read), Reply(code="x = bytearray(1600 * 1024 * 1024)"), Reply(text="ok")]
    tools: Any = [{"type": "code_interpreter", "container": auto}]
    first = served.client.responses.create(model="m", input="add them", tools=tools, include=OUTPUTS)
    loaded, hog = calls(first)
    assert logs(loaded) == "6\n"
    assert (hog.status, "1g memory limit" in logs(hog)) == ("failed", True), logs(hog)
    assert "limited to 1g" in str(served.fake.seen[0].body)
    assert "1g memory limit" in served.fake.seen[-1].results[-1]
    # The container, named by id, is the same live kernel: state set after the kill is still there.
    served.fake.script = [Reply(code="total = 6"), Reply(text="set")]
    named: Any = [{"type": "code_interpreter", "container": loaded.container_id}]
    served.client.responses.create(model="m", input="set it", tools=named)
    served.fake.script = [Reply(code="print(total * 7)"), Reply(text="42")]
    again = served.client.responses.create(model="m", input="use it", tools=named, include=OUTPUTS)
    (call,) = calls(again)
    assert (call.container_id, logs(call)) == (loaded.container_id, "42\n")


def test_temperature_and_top_p_reach_the_model_where_the_api_takes_them(served: Served) -> None:
    """temperature and top_p go up with every turn; Anthropic's Messages API (SDK 2.x) has none to set."""
    served.fake.script = [Reply(code="1"), Reply(text="done")]
    served.client.responses.create(model="m", input="go", tools=AUTO, temperature=0, top_p=0.5)
    expected = (None, None) if served.api == "anthropic" else (0, 0.5)
    assert [seen.sampling for seen in served.fake.seen] == [expected, expected]


def test_a_function_call_left_unanswered_is_a_400(served: Served) -> None:
    """Continuing past a function call without its output is refused before any model is asked, as OpenAI does."""
    served.fake.script = [Reply(function=("lookup", '{"word": "zmq"}'))]
    first = served.client.responses.create(model="m", input="define", tools=[*AUTO, LOOKUP])
    call = function_call(first)
    with pytest.raises(openai.BadRequestError) as caught:
        served.client.responses.create(
            model="m", previous_response_id=first.id, input="never mind", tools=[*AUTO, LOOKUP]
        )
    assert f"No tool output found for function call {call.call_id}." in caught.value.message
    assert len(served.fake.requests) == 1


def test_long_logs_reach_the_model_cut_in_the_middle_and_files_are_named(served: Served) -> None:
    """The client gets every character; the model gets the first and last 10,000 with a marker, and the files."""
    code = "print('a' * 15000 + 'b' * 15000)\nopen('out.csv', 'w').close()"
    served.fake.script = [Reply(code=code), Reply(text="ok")]
    response = served.client.responses.create(model="m", input="go", tools=AUTO, include=OUTPUTS)
    (call,) = calls(response)
    assert logs(call) == "a" * 15000 + "b" * 15000 + "\n"
    cut = "a" * 10000 + "\n[... 10001 characters cut ...]\n" + "b" * 9999 + "\n"
    assert served.fake.seen[1].results == [cut + "\nFiles written: /mnt/data/out.csv"]


def test_anthropic_gets_one_call_at_a_time_a_default_limit_and_is_error(data_dir: Path) -> None:
    """disable_parallel_tool_use, max_tokens 8192 when the request sets none, is_error for a timeout, an OOM
    kill and a dead kernel (not for code that raised, which is an ordinary result)."""
    with fake_upstream() as (fake, _):
        # The timeout is long enough for the memory hog to be killed first on a loaded host.
        settings = upstream_settings(fake, "anthropic", data_dir, execution_timeout=5)
        with serve(settings) as base_url:
            fake.script = [
                Reply(code="import time\ntime.sleep(30)"),
                Reply(code="x = bytearray(1600 * 1024 * 1024)"),
                Reply(code="import os\nos._exit(1)"),
                Reply(code="1 / 0"),
                Reply(code="print('fine')"),
                Reply(text="done"),
            ]
            tools: Any = [{"type": "code_interpreter", "container": {"type": "auto", "memory_limit": "1g"}}]
            response = sdk_for(base_url).responses.create(model="m", input="go", tools=tools, include=OUTPUTS)
    assert [call.status for call in calls(response)] == ["incomplete", "failed", "failed", "completed", "completed"]
    first = fake.seen[0].body
    assert first["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert first["max_tokens"] == 8192
    messages = fake.seen[-1].body["messages"]
    results = [block for m in messages if isinstance(m["content"], list) for block in m["content"]]
    flags = [block.get("is_error", False) for block in results if block["type"] == "tool_result"]
    assert flags == [True, True, True, False, False]


_FORCED_PYTHON = {
    "chat": {"type": "function", "function": {"name": "python"}},
    "responses": {"type": "function", "name": "python"},
    "anthropic": {"type": "tool", "name": "python", "disable_parallel_tool_use": True},
    "gemini": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["python"]}},
}
_AUTO = {
    "chat": "auto",
    "responses": "auto",
    "anthropic": {"type": "auto", "disable_parallel_tool_use": True},
    "gemini": {"functionCallingConfig": {"mode": "AUTO"}},
}


def _choice_sent(api: str, body: dict[str, Any]) -> Any:
    return body.get("toolConfig") if api == "gemini" else body.get("tool_choice")


def test_a_forced_code_interpreter_is_forced_once_in_each_api(served: Served) -> None:
    """tool_choice {"type": "code_interpreter"} forces the python tool in the upstream's own form, on the
    first turn only: after the call the model may answer."""
    served.fake.script = [Reply(code="print(6 * 7)"), Reply(text="42")]
    response = served.client.responses.create(
        model="m", input="compute", tools=AUTO, tool_choice={"type": "code_interpreter"}, include=OUTPUTS
    )
    assert [logs(call) for call in calls(response)] == ["42\n"]
    sent = [_choice_sent(served.api, seen.body) for seen in served.fake.seen]
    assert sent == [_FORCED_PYTHON[served.api], _AUTO[served.api]]


def test_structured_output_goes_to_each_api(served: Served) -> None:
    """text.format json_schema reaches the upstream in its own form, and the answer parses."""
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer"}},
        "required": ["n"],
        "additionalProperties": False,
    }
    served.fake.script = [Reply(text='{"n": 42}')]
    response = served.client.responses.create(
        model="m",
        input="answer",
        tools=AUTO,
        text={"format": {"type": "json_schema", "name": "answer", "schema": schema, "strict": True}},
    )
    assert response.output_text == '{"n": 42}'
    body = served.fake.seen[0].body
    sent = {
        "chat": lambda: body["response_format"]["json_schema"]["schema"],
        "responses": lambda: body["text"]["format"]["schema"],
        "anthropic": lambda: body["output_config"]["format"]["schema"],
        "gemini": lambda: body["generationConfig"]["responseJsonSchema"],
    }[served.api]()
    assert sent == schema


def test_without_the_code_interpreter_no_python_tool_is_offered(served: Served) -> None:
    """A request with only function tools is a plain model call: the model sees those tools and no python."""
    served.fake.script = [Reply(text="plain")]
    response = served.client.responses.create(model="m", input="hi", tools=[LOOKUP])
    assert response.output_text == "plain"
    assert served.fake.seen[0].tools == ["lookup"]


def test_an_input_image_reaches_a_model_that_takes_images(served: Served) -> None:
    """A user's input_image goes to Anthropic and Gemini as an image; to a model without vision, as a note."""
    pixel = "data:image/png;base64," + base64.b64encode(PNG_PIXEL).decode()
    served.fake.script = [Reply(text="A pixel.")]
    content: Any = [{"type": "input_text", "text": "what is this?"}, {"type": "input_image", "image_url": pixel}]
    response = served.client.responses.create(model="m", input=[{"role": "user", "content": content}], tools=AUTO)
    assert response.output_text == "A pixel."
    takes_images = served.api in ("anthropic", "gemini")
    assert served.fake.seen[0].images == (1 if takes_images else 0)
    assert ("does not take images" in str(served.fake.seen[0].body)) is not takes_images
