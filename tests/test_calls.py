"""How a call ends, through the gateway and the SDK, as the README's table says; and kernelgate/exec's answers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import docker
import openai
import pytest
from openai.types.responses import ResponseCodeInterpreterToolCall, ResponseOutputMessage, ToolParam

from gateway.testing import serve

from .conftest import container_of, gateway_settings, sdk_for
from .responses import AUTO, OUTPUTS, calls, images, item, logs, message_text, tools_for


@pytest.fixture(scope="module")
def base_url(test_root: Path) -> Iterator[str]:
    """A gateway whose executions time out after 2 s."""
    settings = gateway_settings(test_root / "calls", execution_timeout=2)
    with serve(settings) as url:
        yield url


def _run(base_url: str, code: str, tools: list[ToolParam] = AUTO) -> ResponseCodeInterpreterToolCall:
    """One kernelgate/exec response running `code`; its one call."""
    response = sdk_for(base_url).responses.create(model="kernelgate/exec", input=code, tools=tools, include=OUTPUTS)
    (call,) = calls(response)
    return call


def _then(base_url: str, call: ResponseCodeInterpreterToolCall, code: str) -> str:
    """The logs of the next call in the same container."""
    return logs(_run(base_url, code, tools_for(call.container_id)))


def test_a_call_past_the_timeout_is_interrupted_and_its_variables_kept(base_url: str) -> None:
    """The interrupt stops the code: the call is incomplete, says so, and the kernel keeps its variables."""
    call = _run(base_url, "kept = 1\nprint('started')\nimport time\ntime.sleep(60)")
    assert call.status == "incomplete"
    assert logs(call).startswith("started\n")
    assert logs(call).endswith(
        "Execution timed out after 2 s and was interrupted; the kernel's variables are kept.\n"
    ), logs(call)
    assert _then(base_url, call, "kept") == "1\n"


def test_code_that_ignores_the_interrupt_gets_its_kernel_restarted(base_url: str) -> None:
    """Past the grace period after the interrupt the kernel is restarted, and the call says its variables are gone."""
    code = "lost = 1\nimport signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(60)"
    call = _run(base_url, code)
    assert call.status == "incomplete"
    assert logs(call).endswith(
        "Execution timed out after 2 s and did not stop within 3 s of the interrupt, so the kernel was restarted; "
        "its variables are gone.\n"
    ), logs(call)
    assert _then(base_url, call, "'lost' in globals()") == "False\n"


def test_a_dead_kernel_fails_the_call_and_a_fresh_one_follows(base_url: str) -> None:
    """os._exit kills the kernel: the call is failed with the exit code, and the container still runs code."""
    call = _run(base_url, "gone = 1\nimport os\nos._exit(3)")
    assert call.status == "failed"
    assert logs(call) == "The kernel died (exit code 3) and was restarted; its variables are gone.\n"
    assert _then(base_url, call, "'gone' in globals()") == "False\n"


def test_the_same_input_gives_the_same_answer(base_url: str) -> None:
    """kernelgate/exec is deterministic: the same code gives the same text and the same outputs."""
    code = "import random\nrandom.seed(7)\nopen('r.txt', 'w').write(str(random.random()))\nprint(random.random())"
    client = sdk_for(base_url)
    first, second = (
        client.responses.create(model="kernelgate/exec", input=code, tools=AUTO, include=OUTPUTS) for _ in range(2)
    )
    assert first.output_text == second.output_text
    assert "[r.txt](sandbox:/mnt/data/r.txt)" in first.output_text
    assert calls(first)[0].container_id != calls(second)[0].container_id


def test_several_figures_and_several_files(base_url: str) -> None:
    """Each figure is its own image output; each file the code wrote is linked and cited in the answer."""
    code = (
        "import matplotlib.pyplot as plt\n"
        "for n in range(3):\n    plt.figure(); plt.plot([0, n]); plt.show()\n"
        "for name in ('a.csv', 'b.txt'):\n    open(name, 'w').write(name)\n"
    )
    response = sdk_for(base_url).responses.create(model="kernelgate/exec", input=code, tools=AUTO, include=OUTPUTS)
    (call,) = calls(response)
    figures = images(call)
    assert len(figures) == 3
    assert all(url.startswith("data:image/png;base64,") for url in figures)
    assert len(set(figures)) == 3
    for name in ("a.csv", "b.txt"):
        assert f"[{name}](sandbox:/mnt/data/{name})" in response.output_text
    annotations = message_text(item(response, 1, ResponseOutputMessage)).annotations
    cited = sorted(a.filename for a in annotations if a.type == "container_file_citation")
    assert cited == ["a.csv", "b.txt"]


def test_auto_mode_after_expiry_is_a_400(data_dir: Path, docker_client: docker.DockerClient) -> None:
    """A follow-up whose auto container expired is a 400 `Container is expired.`, as OpenAI answers; a new
    conversation gets a new container."""
    settings = gateway_settings(data_dir, expiry_minute_seconds=0.1)
    with serve(settings) as url:
        client = sdk_for(url)
        first = client.responses.create(model="kernelgate/exec", input="x = 1", tools=AUTO, include=OUTPUTS)
        container_id = calls(first)[0].container_id
        deadline = time.monotonic() + 30
        while container_of(docker_client, container_id) is not None:  # 20 minutes of 0.1 s; asking would be activity
            assert time.monotonic() < deadline, "the auto container never expired"
            time.sleep(0.5)
        with pytest.raises(openai.BadRequestError) as caught:
            client.responses.create(
                model="kernelgate/exec", input="'x' in globals()", tools=AUTO, previous_response_id=first.id
            )
        assert caught.value.body == {
            "message": "Container is expired.",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
        assert client.containers.retrieve(container_id).status == "expired"
        fresh = client.responses.create(model="kernelgate/exec", input="'x' in globals()", tools=AUTO, include=OUTPUTS)
    (call,) = calls(fresh)
    assert call.container_id != container_id
    assert (call.status, logs(call)) == ("completed", "False\n")
