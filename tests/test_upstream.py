"""Real models through kernelgate: a fake Chat Completions upstream calls the python tool; the client sees
the hosted tool's output through the official openai SDK."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from gateway import Settings
from gateway.testing import serve

from .conftest import IMAGE, sdk_for
from .fake_upstream import FakeUpstream, Reply, fake_upstream

AUTO = [{"type": "code_interpreter", "container": {"type": "auto"}}]
OUTPUTS = ["code_interpreter_call.outputs"]


@pytest.fixture
def upstream(data_dir: Path) -> Iterator[tuple[FakeUpstream, openai.OpenAI]]:
    with fake_upstream() as (fake, upstream_url):
        settings = Settings(
            data_dir=data_dir, image=IMAGE, upstream_base_url=upstream_url, upstream_timeout=2, max_iterations=3
        )
        with serve(settings) as base_url:
            yield fake, sdk_for(base_url, timeout=60)


def test_the_model_calls_the_tool_then_answers(upstream: tuple[FakeUpstream, openai.OpenAI]) -> None:
    """A python call runs in the sandbox, its result goes back to the model, and the answer follows."""
    fake, client = upstream
    fake.script = [Reply(code="print(6 * 7)"), Reply(text="The answer is 42.")]
    response = client.responses.create(model="test-model", input="What is 6 * 7?", tools=AUTO, include=OUTPUTS)
    call, message = response.output
    assert message.type == "message"
    assert (call.type, call.code, call.status) == ("code_interpreter_call", "print(6 * 7)", "completed")
    assert call.outputs[0].logs == "42\n"
    assert response.output_text == "The answer is 42."
    first, second = fake.requests
    assert first["model"] == "test-model"
    assert first["tools"][0]["function"]["name"] == "python"
    assert "/mnt/data" in first["tools"][0]["function"]["description"]
    assert second["messages"][-1] == {"role": "tool", "tool_call_id": call.id, "content": "42\n"}
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (20, 10)


def test_two_calls_share_one_container(upstream: tuple[FakeUpstream, openai.OpenAI]) -> None:
    """Kernel state carries from one call to the next within the response."""
    fake, client = upstream
    fake.script = [Reply(code="x = 40"), Reply(code="x + 2"), Reply(text="done")]
    response = client.responses.create(model="m", input="go", tools=AUTO, include=OUTPUTS)
    first, second, _ = response.output
    assert first.container_id == second.container_id
    assert second.outputs[0].logs == "42\n"


def test_streamed_arguments_become_plain_code_deltas(upstream: tuple[FakeUpstream, openai.OpenAI]) -> None:
    """The function-call JSON fragments reach the client as code, not JSON; text deltas pass through."""
    fake, client = upstream
    code = 'print("a \\"quoted\\" line")\nprint(1)'
    fake.script = [Reply(code=code, pieces=9), Reply(text="All printed.", pieces=3)]
    with client.responses.stream(model="m", input="go", tools=AUTO) as stream:
        events = list(stream)
    deltas = [e.delta for e in events if e.type == "response.code_interpreter_call_code.delta"]
    assert len(deltas) > 1
    assert "".join(deltas) == code
    text = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(text) == "All printed."


def test_an_upstream_500_is_retried(upstream: tuple[FakeUpstream, openai.OpenAI]) -> None:
    """A retryable upstream failure is retried with backoff before anything fails."""
    fake, client = upstream
    fake.script = [Reply(status=500), Reply(text="fine after all")]
    response = client.responses.create(model="m", input="hi", tools=AUTO)
    assert response.status == "completed"
    assert response.output_text == "fine after all"
    assert len(fake.requests) == 2


def test_an_upstream_4xx_fails_the_response_with_its_status(upstream: tuple[FakeUpstream, openai.OpenAI]) -> None:
    """A non-retryable upstream error ends the response as failed, naming the upstream's status."""
    fake, client = upstream
    fake.script = [Reply(status=400)]
    response = client.responses.create(model="m", input="hi", tools=AUTO)
    assert response.status == "failed"
    assert response.error is not None
    assert response.error.code == "upstream_400"
    assert "scripted 400" in response.error.message


def test_an_upstream_that_never_answers_times_out(upstream: tuple[FakeUpstream, openai.OpenAI]) -> None:
    """Past KERNELGATE_UPSTREAM_TIMEOUT (and its retries) the response fails instead of hanging."""
    fake, client = upstream
    fake.script = [Reply(hang=30), Reply(hang=30), Reply(hang=30)]
    with client.responses.stream(model="m", input="hi", tools=AUTO) as stream:
        events = list(stream)
    assert events[-1].type == "response.failed"
    assert events[-1].response.error.code == "upstream_504"


def test_the_iteration_limit_ends_the_response_as_incomplete(upstream: tuple[FakeUpstream, openai.OpenAI]) -> None:
    """A model that keeps calling the tool is stopped after KERNELGATE_MAX_ITERATIONS turns."""
    fake, client = upstream
    fake.script = [Reply(code=f"step = {n}") for n in range(10)]
    response = client.responses.create(model="m", input="loop", tools=AUTO)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert "max_iterations" in str(response.incomplete_details.reason)
    assert len([item for item in response.output if item.type == "code_interpreter_call"]) == 3


def test_client_function_tools_pass_through(upstream: tuple[FakeUpstream, openai.OpenAI]) -> None:
    """The model sees the client's function tool; its call ends the response; the output continues it."""
    fake, client = upstream
    lookup = {
        "type": "function",
        "name": "lookup",
        "description": "Look a word up.",
        "parameters": {"type": "object", "properties": {"word": {"type": "string"}}},
    }
    fake.script = [Reply(code="word = 'kernel'"), Reply(function=("lookup", '{"word": "kernel"}')), Reply(text="ok")]
    first = client.responses.create(model="m", input="define it", tools=[*AUTO, lookup])  # type: ignore[list-item]
    assert [item.type for item in first.output] == ["code_interpreter_call", "function_call"]
    call = first.output[-1]
    assert (call.name, call.arguments, call.call_id) == ("lookup", '{"word": "kernel"}', "call_1")
    offered = [tool["function"]["name"] for tool in fake.requests[0]["tools"]]
    assert offered == ["python", "lookup"]
    second = client.responses.create(
        model="m",
        previous_response_id=first.id,
        tools=[*AUTO, lookup],  # type: ignore[list-item]
        input=[{"type": "function_call_output", "call_id": "call_1", "output": "the core of a system"}],
    )
    assert second.output_text == "ok"
    messages = fake.requests[-1]["messages"]
    assert messages[-2]["tool_calls"][0]["function"] == {"name": "lookup", "arguments": '{"word": "kernel"}'}
    assert messages[-1] == {"role": "tool", "tool_call_id": "call_1", "content": "the core of a system"}


def test_record_then_replay_without_the_upstream(data_dir: Path, tmp_path: Path) -> None:
    """Recorded once against the upstream, the same requests replay offline with the same response."""
    cassette = tmp_path / "cassette.json"
    request = {"model": "m", "input": "compute", "tools": AUTO, "include": OUTPUTS}

    def run(settings: Settings) -> dict[str, object]:
        with serve(settings) as base_url:
            client = sdk_for(base_url)
            response = client.responses.create(**request)  # type: ignore[call-overload]
            return {
                "text": response.output_text,
                "calls": [
                    (i.code, "".join(o.logs for o in i.outputs if o.type == "logs"))
                    for i in response.output
                    if i.type == "code_interpreter_call"
                ],
            }

    with fake_upstream() as (fake, upstream_url):
        fake.script = [Reply(code="numbers = [1, 2, 3]"), Reply(code="print(sum(numbers))"), Reply(text="Six.")]
        recorded = run(
            Settings(
                data_dir=data_dir,
                image=IMAGE,
                upstream_base_url=upstream_url,
                cassette=cassette,
                cassette_mode="record",
            )
        )
    document = json.loads(cassette.read_text())
    assert len(document["interactions"]) == 3
    assert document["interactions"][0]["request"]["path"] == "/v1/chat/completions"

    # The fake upstream is stopped now: nothing answers at its address any more.
    replayed = run(Settings(data_dir=data_dir, image=IMAGE, upstream_base_url=upstream_url, cassette=cassette))
    assert replayed == recorded
    assert recorded["calls"] == [("numbers = [1, 2, 3]", ""), ("print(sum(numbers))", "6\n")]


def test_replay_of_an_unrecorded_request_names_it_and_the_cassette(data_dir: Path, tmp_path: Path) -> None:
    """A request the cassette does not hold fails the response with a message naming both."""
    cassette = tmp_path / "empty.json"
    cassette.write_text(json.dumps({"kernelgate_cassette": 1, "interactions": []}))
    with serve(Settings(data_dir=data_dir, image=IMAGE, cassette=cassette)) as base_url:
        client = sdk_for(base_url)
        response = client.responses.create(model="m", input="hi", tools=AUTO)
    assert response.status == "failed"
    assert response.error is not None
    assert str(cassette) in response.error.message
    assert "/v1/chat/completions" in response.error.message


def test_a_streamed_function_call_reaches_the_stream_helper(upstream: tuple[FakeUpstream, openai.OpenAI]) -> None:
    """The function call's events let responses.stream() build the call with its full arguments."""
    fake, client = upstream
    lookup = {"type": "function", "name": "lookup", "parameters": {"type": "object", "properties": {}}}
    fake.script = [Reply(function=("lookup", '{"word": "zmq"}'))]
    with client.responses.stream(model="m", input="x", tools=[*AUTO, lookup]) as stream:  # type: ignore[list-item]
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert "response.function_call_arguments.delta" in kinds
    assert kinds[-1] == "response.completed"
    (call,) = final.output
    assert (call.type, call.name, call.arguments) == ("function_call", "lookup", '{"word": "zmq"}')


def test_a_responses_api_upstream_runs_the_tool(data_dir: Path) -> None:
    """With KERNELGATE_UPSTREAM_API=responses the model is asked through the Responses API, with the same loop."""
    with fake_upstream() as (fake, upstream_url):
        settings = Settings(data_dir=data_dir, image=IMAGE, upstream_base_url=upstream_url, upstream_api="responses")
        with serve(settings) as base_url:
            client = sdk_for(base_url)
            fake.script = [Reply(code="total = 2 + 40\nprint(total)"), Reply(text="It is 42.")]
            with client.responses.stream(model="m", input="add", tools=AUTO, include=OUTPUTS) as stream:
                deltas = [e.delta for e in stream if e.type == "response.code_interpreter_call_code.delta"]
                response = stream.get_final_response()
    assert "".join(deltas) == "total = 2 + 40\nprint(total)"
    call, message = response.output
    assert (call.type, message.type) == ("code_interpreter_call", "message")
    assert call.outputs[0].logs == "42\n"
    assert response.output_text == "It is 42."
    assert response.usage is not None
    assert response.usage.total_tokens == 30
    follow = fake.requests[1]
    assert follow["tools"][0]["name"] == "python"
    assert follow["input"][-1] == {"type": "function_call_output", "call_id": call.id, "output": "42\n"}
    assert follow["store"] is False


def test_provider_prefixes_route_to_named_providers(data_dir: Path, tmp_path: Path) -> None:
    """`Name/model` goes to provider Name with the prefix stripped; other names go to the default upstream."""
    with (
        fake_upstream() as (chat, chat_url),
        fake_upstream() as (responses, responses_url),
        fake_upstream() as (
            default,
            default_url,
        ),
    ):
        providers = tmp_path / "providers.toml"
        providers.write_text(
            f'[ollama]\nbase_url = "{chat_url}"\n\n'
            f'[OpenAI]\nbase_url = "{responses_url}"\napi = "responses"\napi_key_env = "FAKE_OPENAI_KEY"\n'
        )
        settings = Settings.from_env(
            {
                "KERNELGATE_DATA_DIR": str(data_dir),
                "KERNELGATE_IMAGE": IMAGE,
                "KERNELGATE_PROVIDERS": str(providers),
                "KERNELGATE_UPSTREAM_BASE_URL": default_url,
                "FAKE_OPENAI_KEY": "sk-test",
            }
        )
        assert settings.providers["OpenAI"].api_key == "sk-test"
        for fake in (chat, responses, default):
            fake.script = [Reply(text="hello")]
        with serve(settings) as base_url:
            client = sdk_for(base_url)
            for model in ("ollama/qwen2.5-coder", "OpenAI/gpt-4.1-mini", "plain-model"):
                assert client.responses.create(model=model, input="hi", tools=AUTO).output_text == "hello"
    assert chat.requests[0]["model"] == "qwen2.5-coder"
    assert responses.requests[0]["model"] == "gpt-4.1-mini"
    assert default.requests[0]["model"] == "plain-model"


def test_malformed_upstream_output_fails_the_response(upstream: tuple[FakeUpstream, openai.OpenAI]) -> None:
    """A stream that is not Chat Completions ends the response as failed, not as a 500."""
    fake, client = upstream
    fake.script = [Reply(garbage=True)]
    response = client.responses.create(model="m", input="hi", tools=AUTO)
    assert response.status == "failed"
    assert response.error is not None
    assert "cannot read" in response.error.message


def test_an_upstream_that_does_not_stream(data_dir: Path) -> None:
    """KERNELGATE_UPSTREAM_STREAM=false asks for whole completions; the client still gets the same output."""
    with fake_upstream() as (fake, upstream_url):
        settings = Settings(data_dir=data_dir, image=IMAGE, upstream_base_url=upstream_url, upstream_stream=False)
        with serve(settings) as base_url:
            client = sdk_for(base_url)
            fake.script = [Reply(code="print('whole')"), Reply(text="Printed.")]
            response = client.responses.create(model="m", input="go", tools=AUTO, include=OUTPUTS)
    call, _ = response.output
    assert (call.code, call.outputs[0].logs) == ("print('whole')", "whole\n")
    assert response.output_text == "Printed."
    assert fake.requests[0]["stream"] is False
    assert response.usage is not None
    assert response.usage.total_tokens == 30


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_images_are_attached_for_vision_upstreams(data_dir: Path, api: str) -> None:
    """With KERNELGATE_UPSTREAM_VISION the figure a call displayed reaches the model as an image after its result."""
    with fake_upstream() as (fake, upstream_url):
        settings = Settings(
            data_dir=data_dir, image=IMAGE, upstream_base_url=upstream_url, upstream_api=api, upstream_vision=True
        )  # type: ignore[arg-type]
        with serve(settings) as base_url:
            fake.script = [
                Reply(code="import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()"),
                Reply(text="A line."),
            ]
            sdk_for(base_url).responses.create(model="m", input="plot", tools=AUTO)
    follow = fake.requests[1]
    last = (follow["messages"] if api == "chat" else follow["input"])[-1]
    assert last["role"] == "user"
    image = last["content"][1]
    url = image["image_url"]["url"] if api == "chat" else image["image_url"]
    assert url.startswith("data:image/png;base64,")


def test_without_vision_images_are_only_described(upstream: tuple[FakeUpstream, openai.OpenAI]) -> None:
    """By default the model reads that images were shown, and gets no image input it may not accept."""
    fake, client = upstream
    fake.script = [Reply(code="import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()"), Reply(text="ok")]
    client.responses.create(model="m", input="plot", tools=AUTO)
    last = fake.requests[1]["messages"][-1]
    assert last["role"] == "tool"
    assert "displayed 1 image" in last["content"]
