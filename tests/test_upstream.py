"""Upstream models beyond one call: timeouts, the iteration limit, cassettes, routing, vision.

What every upstream API must do alike is in test_upstream_apis.py; these are the behaviours around it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from gateway import Settings
from gateway.testing import serve

from .conftest import IMAGE, gateway_settings, sdk_for, upstream_settings
from .fake_script import path_for
from .fake_upstream import APIS, Api, FakeUpstream, Reply, fake_upstream
from .responses import AUTO, OUTPUTS, function_call


@pytest.fixture
def upstream(data_dir: Path) -> Iterator[tuple[FakeUpstream, openai.OpenAI]]:
    with fake_upstream() as (fake, _):
        settings = upstream_settings(fake, "chat", data_dir, upstream_timeout=2, max_iterations=3)
        with serve(settings) as base_url:
            yield fake, sdk_for(base_url, timeout=60)


def test_an_upstream_that_never_answers_times_out(upstream: tuple[FakeUpstream, openai.OpenAI]) -> None:
    """Past KERNELGATE_UPSTREAM_TIMEOUT (and its retries) the request fails with a 504 instead of hanging:
    the stream had not begun, so it is an HTTP error the SDK can retry."""
    fake, client = upstream
    fake.script = [Reply(hang=30), Reply(hang=30), Reply(hang=30)]
    with pytest.raises(openai.APIStatusError) as caught:
        client.responses.create(model="m", input="hi", tools=AUTO, stream=True)
    assert caught.value.status_code == 504
    assert "could not be reached" in caught.value.message


@pytest.mark.parametrize("ignores_none", [False, True])
def test_the_iteration_limit_asks_for_an_answer(
    upstream: tuple[FakeUpstream, openai.OpenAI], ignores_none: bool
) -> None:
    """After KERNELGATE_MAX_ITERATIONS turns of code the model gets one more with tool_choice none, and the
    response completes with what it says; code it writes anyway is not run, as OpenAI ignores calls past a limit."""
    fake, client = upstream
    last = Reply(text="enough", code="step = 99") if ignores_none else Reply(text="enough")
    fake.script = [*(Reply(code=f"step = {n}") for n in range(3)), last]
    response = client.responses.create(model="m", input="loop", tools=AUTO)
    assert (response.status, response.incomplete_details, response.output_text) == ("completed", None, "enough")
    assert [item.type for item in response.output] == [*["code_interpreter_call"] * 3, "message"]
    assert [seen.body.get("tool_choice") for seen in fake.seen] == ["auto", "auto", "auto", "none"]


@pytest.mark.parametrize("api", APIS)
def test_record_then_replay_without_the_upstream(data_dir: Path, tmp_path: Path, api: Api) -> None:
    """Recorded once against the upstream, the same requests replay offline with the same response; no key is kept."""
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

    with fake_upstream(key="sk-secret") as (fake, _):
        upstream_url = fake.url_for(api)
        fake.script = [Reply(code="numbers = [1, 2, 3]"), Reply(code="print(sum(numbers))"), Reply(text="Six.")]
        recorded = run(upstream_settings(fake, api, data_dir, cassette=cassette, cassette_mode="record"))
    document = json.loads(cassette.read_text())
    assert len(document["interactions"]) == 3
    assert document["interactions"][0]["request"]["path"] == path_for(api, streamed=True)
    assert "sk-secret" not in cassette.read_text()

    # The fake upstream is stopped now: nothing answers at its address any more.
    replayed = run(gateway_settings(data_dir, upstream_api=api, upstream_base_url=upstream_url, cassette=cassette))
    assert replayed == recorded
    assert recorded["calls"] == [("numbers = [1, 2, 3]", ""), ("print(sum(numbers))", "6\n")]


def test_replay_of_an_unrecorded_request_names_it_and_the_cassette(data_dir: Path, tmp_path: Path) -> None:
    """A request the cassette does not hold fails the response with a message naming both."""
    cassette = tmp_path / "empty.json"
    cassette.write_text(json.dumps({"kernelgate_cassette": 1, "interactions": []}))
    with serve(gateway_settings(data_dir, cassette=cassette)) as base_url:
        client = sdk_for(base_url)
        with pytest.raises(openai.InternalServerError) as caught:
            client.responses.create(model="m", input="hi", tools=AUTO)
    assert (caught.value.status_code, caught.value.code) == (502, "cassette_miss")
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert str(cassette) in caught.value.message
    assert "/v1/chat/completions" in caught.value.message


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
    call = function_call(final)
    assert (call.type, call.name, call.arguments) == ("function_call", "lookup", '{"word": "zmq"}')


def test_provider_prefixes_route_to_named_providers(data_dir: Path, tmp_path: Path) -> None:
    """`Name/model` goes to provider Name with the prefix stripped; other names go to the default upstream."""
    with (
        fake_upstream(key=None) as (chat, chat_url),
        fake_upstream(key="sk-test") as (responses, responses_url),
        fake_upstream() as (default, default_url),
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
                "KERNELGATE_UPSTREAM_API_KEY": str(default.key),
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
    assert [(seen.path, seen.model) for seen in chat.seen] == [("/v1/chat/completions", "qwen2.5-coder")]
    assert [(seen.path, seen.model) for seen in responses.seen] == [("/v1/responses", "gpt-4.1-mini")]
    assert [(seen.path, seen.model) for seen in default.seen] == [("/v1/chat/completions", "plain-model")]


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_images_are_attached_for_vision_upstreams(data_dir: Path, api: Api) -> None:
    """With KERNELGATE_UPSTREAM_VISION the figure a call displayed reaches the model as an image after its result."""
    with fake_upstream() as (fake, _):
        settings = upstream_settings(fake, api, data_dir, upstream_vision=True)
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


def test_providers_file_tables_replace_the_built_in_anthropic_and_gemini(data_dir: Path, tmp_path: Path) -> None:
    """An [Anthropic] or [Gemini] table wins over the built-in provider: its URL, its key, its max_output_tokens."""
    with fake_upstream(key="from-the-table") as (fake, _):
        providers = tmp_path / "providers.toml"
        providers.write_text(
            f'[Anthropic]\nbase_url = "{fake.root}"\napi = "anthropic"\napi_key_env = "TABLE_KEY"\n'
            "max_output_tokens = 321\n\n"
            f'[Gemini]\nbase_url = "{fake.root}"\napi = "gemini"\napi_key_env = "TABLE_KEY"\n'
        )
        unreachable = "http://127.0.0.1:9"
        settings = Settings.from_env(
            {
                "KERNELGATE_DATA_DIR": str(data_dir),
                "KERNELGATE_IMAGE": IMAGE,
                "KERNELGATE_PROVIDERS": str(providers),
                "TABLE_KEY": "from-the-table",
                "ANTHROPIC_API_KEY": "the built-in one's",
                "ANTHROPIC_BASE_URL": unreachable,
                "GEMINI_API_KEY": "the built-in one's",
                "GOOGLE_GEMINI_BASE_URL": unreachable,
            }
        )
        fake.script = [Reply(text="claude"), Reply(text="claude again"), Reply(text="gemini")]
        with serve(settings) as base_url:
            client = sdk_for(base_url)
            client.responses.create(model="anthropic/claude-x", input="hi", tools=AUTO)
            client.responses.create(model="anthropic/claude-x", input="hi", tools=AUTO, max_output_tokens=50)
            client.responses.create(model="GEMINI/gemini-x", input="hi", tools=AUTO)
    assert [(seen.path, seen.model, seen.max_tokens) for seen in fake.seen] == [
        ("/v1/messages", "claude-x", 321),
        ("/v1/messages", "claude-x", 50),
        ("/v1beta/models/gemini-x:streamGenerateContent?alt=sse", "gemini-x", None),
    ]


def test_max_output_tokens_is_the_whole_responses_budget(upstream: tuple[FakeUpstream, openai.OpenAI]) -> None:
    """Each turn may write what the turns before it left (the fake counts 5 output tokens a turn)."""
    fake, client = upstream
    fake.script = [Reply(code=f"step = {n}") for n in range(3)] + [Reply(text="done")]
    response = client.responses.create(model="m", input="go", tools=AUTO, max_output_tokens=16)
    assert [seen.max_tokens for seen in fake.seen] == [16, 11, 6, 1]
    assert response.usage is not None
    assert response.usage.output_tokens == 20
