"""The Gemini door: the google-genai SDK pointed at /gemini runs code in kernelgate's sandbox.

Everything the door sends is parsed by the SDK's own types; the same gateway serves the OpenAI door,
whose Containers API shows where the code ran.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from google import genai
from google.genai import errors, types

from gateway.testing import serve

from .conftest import upstream_settings
from .fake_upstream import APIS, FakeUpstream, Reply, fake_upstream

CODE = types.GenerateContentConfig(tools=[types.Tool(code_execution=types.ToolCodeExecution())])


def _client(base_url: str) -> genai.Client:
    return genai.Client(api_key="unused", http_options=types.HttpOptions(base_url=f"{base_url}/gemini"))


@pytest.fixture
def gemini(openai_base_url: str) -> Iterator[genai.Client]:
    client = _client(openai_base_url)
    yield client
    client.close()


def _parts(response: types.GenerateContentResponse) -> list[types.Part]:
    assert response.candidates
    content = response.candidates[0].content
    assert content is not None
    return list(content.parts or [])


def test_code_runs_and_a_follow_up_keeps_the_kernel(gemini: genai.Client) -> None:
    """executableCode, then codeExecutionResult (OUTCOME_OK, the output), then the answer; the contents sent
    back with a new turn find the same kernel again."""
    first = gemini.models.generate_content(model="kernelgate/exec", contents="x = 6 * 7\nprint(x)", config=CODE)
    parts = _parts(first)
    assert parts[0].executable_code is not None
    assert (parts[0].executable_code.language, parts[0].executable_code.code) == ("PYTHON", "x = 6 * 7\nprint(x)")
    assert parts[1].code_execution_result is not None
    assert (parts[1].code_execution_result.outcome, parts[1].code_execution_result.output) == ("OUTCOME_OK", "42\n")
    assert first.text == "Output:\n\n```\n42\n```"
    assert first.candidates
    assert first.candidates[0].finish_reason == "STOP"
    assert first.candidates[0].content is not None
    history = [
        types.Content(role="user", parts=[types.Part(text="x = 6 * 7\nprint(x)")]),
        first.candidates[0].content,
        types.Content(role="user", parts=[types.Part(text="print(x + 1)")]),
    ]
    follow = gemini.models.generate_content(model="kernelgate/exec", contents=history, config=CODE)
    assert follow.code_execution_result == "43\n"


def test_a_raised_error_and_a_figure(gemini: genai.Client) -> None:
    failed = gemini.models.generate_content(model="kernelgate/exec", contents="1 / 0", config=CODE)
    result = _parts(failed)[1].code_execution_result
    assert result is not None
    assert result.outcome == "OUTCOME_FAILED"
    assert "ZeroDivisionError" in (result.output or "")
    plot = "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()"
    figure = gemini.models.generate_content(model="kernelgate/exec", contents=plot, config=CODE)
    images = [part.inline_data for part in _parts(figure) if part.inline_data is not None]
    assert [image.mime_type for image in images] == ["image/png"]
    assert images[0].data is not None
    assert images[0].data.startswith(b"\x89PNG")


def test_the_stream_sends_the_code_before_its_result(gemini: genai.Client) -> None:
    chunks = list(gemini.models.generate_content_stream(model="kernelgate/exec", contents="print('s')", config=CODE))
    kinds = []
    for piece in chunks:
        for part in _parts(piece):
            kinds.append("code" if part.executable_code else "result" if part.code_execution_result else "text")
    assert kinds[:2] == ["code", "result"]
    assert set(kinds[2:]) == {"text"}
    assert chunks[-1].candidates
    assert chunks[-1].candidates[0].finish_reason == "STOP"
    assert "".join(piece.text or "" for piece in chunks) == "Output:\n\n```\ns\n```"


def test_an_inline_file_lands_in_mnt_data(gemini: genai.Client) -> None:
    csv = types.Part(inline_data=types.Blob(mime_type="text/csv", data=b"a,b\n1,2\n", display_name="t.csv"))
    code = types.Part(text="import glob\nimport pandas as pd\nprint(pd.read_csv(glob.glob('*.csv')[0]).b.sum())")
    response = gemini.models.generate_content(
        model="kernelgate/exec", contents=[types.Content(role="user", parts=[csv, code])], config=CODE
    )
    assert response.code_execution_result == "2\n"


def test_errors_are_googles(gemini: genai.Client, openai_base_url: str) -> None:
    with pytest.raises(errors.ClientError) as unserved:
        gemini.models.generate_content(
            model="kernelgate/exec",
            contents="1",
            config=types.GenerateContentConfig(tools=[types.Tool(google_search=types.GoogleSearch())]),
        )
    assert (unserved.value.code, unserved.value.status) == (400, "INVALID_ARGUMENT")
    assert "googleSearch" in (unserved.value.message or "")
    with pytest.raises(errors.ClientError) as unknown:
        gemini.models.generate_content(model="gpt-nothing", contents="1", config=CODE)
    assert unknown.value.code in (400, 404)
    raw = httpx.post(
        f"{openai_base_url}/gemini/v1beta/models/kernelgate/exec:generateContent",
        json={"contents": [], "frobnicate": 1},
        timeout=30,
    )
    assert raw.status_code == 400
    assert raw.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert "frobnicate" in raw.json()["error"]["message"]


@pytest.fixture(params=APIS)
def upstream_gemini(request: pytest.FixtureRequest, data_dir: Path) -> Iterator[tuple[FakeUpstream, genai.Client]]:
    """The Gemini door in front of a model served over each upstream API."""
    with fake_upstream() as (fake, _), serve(upstream_settings(fake, request.param, data_dir)) as base_url:
        client = _client(base_url)
        yield fake, client
        client.close()


def test_any_upstream_model_behind_the_gemini_door(upstream_gemini: tuple[FakeUpstream, genai.Client]) -> None:
    """Any upstream serves any door: the model gets the python tool, and the client its function declarations."""
    fake, client = upstream_gemini
    lookup = types.FunctionDeclaration(
        name="lookup",
        description="Look a word up.",
        parameters_json_schema={"type": "object", "properties": {"word": {"type": "string"}}},
    )
    config = types.GenerateContentConfig(
        tools=[types.Tool(code_execution=types.ToolCodeExecution()), types.Tool(function_declarations=[lookup])]
    )
    fake.script = [Reply(code="print(2 ** 10)"), Reply(function=("lookup", '{"word": "kernel"}'))]
    response = client.models.generate_content(model="m", contents="compute, then look up", config=config)
    assert response.code_execution_result == "1024\n"
    assert response.function_calls is not None
    (call,) = response.function_calls
    assert (call.name, call.args) == ("lookup", {"word": "kernel"})
    assert fake.seen[0].tools == ["python", "lookup"]
    assert response.candidates
    assert response.candidates[0].content is not None
    answered = [
        types.Content(role="user", parts=[types.Part(text="compute, then look up")]),
        response.candidates[0].content,
        types.Content(
            role="user",
            parts=[
                types.Part(
                    function_response=types.FunctionResponse(id=call.id, name="lookup", response={"output": "a core"})
                )
            ],
        ),
    ]
    fake.script = [Reply(text="done")]
    done = client.models.generate_content(model="m", contents=answered, config=config)
    assert done.text == "done"
    assert fake.seen[-1].results == ["1024\n", "a core"]


def test_every_body_the_door_sends_is_a_generate_content_response(openai_base_url: str) -> None:
    """Whole and streamed, each body validates as google-genai's GenerateContentResponse, whose types refuse
    fields they do not have."""
    url = f"{openai_base_url}/gemini/v1beta/models/kernelgate/exec"
    body = {"contents": [{"role": "user", "parts": [{"text": "print(6 * 7)"}]}], "tools": [{"codeExecution": {}}]}
    whole = httpx.post(f"{url}:generateContent", json=body, timeout=60)
    assert whole.status_code == 200, whole.text
    types.GenerateContentResponse.model_validate(whole.json())
    with httpx.stream("POST", f"{url}:streamGenerateContent?alt=sse", json=body, timeout=60) as streamed:
        chunks = [json.loads(line[6:]) for line in streamed.iter_lines() if line.startswith("data: ")]
    assert len(chunks) > 2
    for chunk in chunks:
        types.GenerateContentResponse.model_validate(chunk)
    with pytest.raises(ValueError, match="extra"):  # the check bites: an unknown field is refused
        types.GenerateContentResponse.model_validate({**chunks[0], "surprise": 1})
