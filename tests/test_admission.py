"""Admission: a request the host cannot honour is refused up front, in OpenAI's error shapes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import openai
import pytest

from gateway.testing import serve

from .conftest import gateway_settings, labelled, sdk_for


def _host_gib(client: docker.DockerClient) -> float:
    return float(client.info()["MemTotal"]) / 1024**3


@pytest.fixture
def small_gateway(data_dir: Path) -> Iterator[str]:
    """A gateway that runs two sandboxes at most."""
    with serve(gateway_settings(data_dir, max_sandboxes=2)) as base_url:
        yield base_url


def _live(client: docker.DockerClient, data_dir: Path) -> int:
    return len(labelled(client, f"kernelgate.data_dir={data_dir}"))


def test_a_memory_limit_beyond_the_host_is_a_400_naming_it(
    client: openai.OpenAI, docker_client: docker.DockerClient
) -> None:
    """Asking for the 64g tier on a smaller host is refused before any container is made."""
    if _host_gib(docker_client) >= 64:
        pytest.skip("this host has 64 GiB or more: every tier fits")
    with pytest.raises(openai.BadRequestError) as caught:
        client.containers.create(name="big", memory_limit="64g")
    assert caught.value.param == "memory_limit"
    assert "more than this host's" in caught.value.message
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(
            model="kernelgate/exec",
            input="1",
            tools=[{"type": "code_interpreter", "container": {"type": "auto", "memory_limit": "64g"}}],
        )
    assert "more than this host's" in caught.value.message


def test_past_the_live_sandbox_cap_is_a_429_that_clears(
    small_gateway: str, data_dir: Path, docker_client: docker.DockerClient
) -> None:
    """The third sandbox of a gateway capped at two is OpenAI's rate-limit error; deleting one makes room."""
    sdk = sdk_for(small_gateway)
    first = sdk.containers.create(name="one")
    sdk.containers.create(name="two")
    with pytest.raises(openai.RateLimitError) as caught:
        sdk.containers.create(name="three")
    error = caught.value
    assert (error.type, error.code) == ("requests", "rate_limit_exceeded")
    assert "KERNELGATE_MAX_SANDBOXES" in error.message
    assert error.response.headers["retry-after"] == "5"
    assert _live(docker_client, data_dir) == 2
    sdk.containers.delete(first.id)
    assert sdk.containers.create(name="three").status == "running"


def test_memory_limits_past_the_overcommit_are_a_429(data_dir: Path, docker_client: docker.DockerClient) -> None:
    """With room for 1.5 GiB of limits, a second 1g sandbox is refused until the first is gone."""
    overcommit = 1.5 / _host_gib(docker_client)
    with serve(gateway_settings(data_dir, memory_overcommit=overcommit)) as base_url:
        sdk = sdk_for(base_url)
        first = sdk.containers.create(name="one", memory_limit="1g")
        with pytest.raises(openai.RateLimitError) as caught:
            sdk.containers.create(name="two", memory_limit="1g")
        assert "KERNELGATE_MEMORY_OVERCOMMIT" in caught.value.message
        assert _live(docker_client, data_dir) == 1
        sdk.containers.delete(first.id)
        assert sdk.containers.create(name="two", memory_limit="1g").status == "running"


def test_json_bodies_have_a_smaller_limit_than_uploads(data_dir: Path) -> None:
    """A JSON body past KERNELGATE_MAX_JSON_BYTES is a 413 naming it; an upload of that size is fine."""
    settings = gateway_settings(data_dir, max_json_bytes=10_000)
    with serve(settings) as base_url, httpx.Client(base_url=base_url) as http:
        body = {"model": "kernelgate/exec", "input": "x" * 20_000, "tools": [{"type": "code_interpreter"}]}
        refused = http.post("/v1/responses", json=body)
        assert refused.status_code == 413
        assert "KERNELGATE_MAX_JSON_BYTES" in refused.json()["error"]["message"]
        # Claiming to be an upload does not buy a JSON route the upload limit.
        disguised = http.post(
            "/v1/responses", content=b"x" * 20_000, headers={"content-type": "multipart/form-data; boundary=x"}
        )
        assert disguised.status_code == 413
        uploaded = sdk_for(base_url).files.create(file=("big.txt", b"y" * 50_000), purpose="user_data")
        assert uploaded.bytes == 50_000
