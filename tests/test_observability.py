"""What operators watch: /metrics after known traffic, the request id on every answer, JSON log lines."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from gateway.testing import remove_sandboxes, serve

from .conftest import IMAGE, gateway_settings, sdk_for, upstream_settings, wait_for_pool
from .fake_upstream import Reply, fake_upstream
from .responses import AUTO


def _samples(base_url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics by (name, sorted labels)."""
    answer = httpx.get(f"{base_url}/metrics", timeout=30)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def test_metrics_count_what_the_gateway_did(data_dir: Path) -> None:
    """Executions by status with their durations, live sandboxes and the pool by memory limit, container
    starts by source, requests by route and status, output the caps dropped: each as many as happened."""
    settings = gateway_settings(data_dir, execution_timeout=1, max_output_chars=1000, pool={"1g": 1})
    with serve(settings) as base_url:
        sdk = sdk_for(base_url)
        wait_for_pool(base_url, timeout=60)
        pooled = sdk.containers.create(name="pooled", memory_limit="1g")
        cold = sdk.containers.create(name="cold", memory_limit="4g")
        cases = [
            (pooled.id, "print(1)"),
            (pooled.id, "1 / 0"),
            (pooled.id, "import time\ntime.sleep(30)"),
            (cold.id, "print('x' * 5000)"),
            (cold.id, "import os\nos._exit(3)"),
        ]
        for container_id, code in cases:
            tools = [{"type": "code_interpreter", "container": container_id}]
            sdk.responses.create(model="kernelgate/exec", input=code, tools=tools)  # type: ignore[arg-type]
        missing = httpx.get(f"{base_url}/v1/containers/cntr_missing")
        assert missing.status_code == 404
        assert missing.headers["x-request-id"].startswith("req_")
        samples = _samples(base_url)

    def value(name: str, **labels: str) -> float:
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)

    for status, count in (("completed", 2), ("error", 1), ("timeout", 1), ("kernel_died", 1), ("oom", 0)):
        assert value("kernelgate_executions_total", tool="python", status=status) == count, status
    assert value("kernelgate_execution_duration_seconds_count", tool="python", status="timeout") == 1
    assert value("kernelgate_execution_duration_seconds_sum", tool="python", status="timeout") >= 1
    assert value("kernelgate_container_starts_total", source="pool") == 1
    assert value("kernelgate_container_starts_total", source="cold") == 1
    assert value("kernelgate_sandboxes", memory_limit="1g") == 1
    assert value("kernelgate_sandboxes", memory_limit="4g") == 1
    assert value("kernelgate_pool_ready", memory_limit="1g") in (0, 1)  # refilling, or refilled
    assert value("kernelgate_output_dropped_bytes_total", kind="text") == 5001 - 1000
    route = {"method": "POST", "route": "/v1/responses", "status": "200"}
    assert value("kernelgate_http_requests_total", **route) == len(cases)
    missing_route = {"method": "GET", "route": "/v1/containers/{container_id}", "status": "404"}
    assert value("kernelgate_http_requests_total", **missing_route) == 1
    assert value("kernelgate_http_request_duration_seconds_count", method="POST", route="/v1/responses") == len(cases)


def test_metrics_count_upstream_requests_and_tokens(data_dir: Path) -> None:
    """Each model turn asked of a provider, by outcome, and the tokens it reported."""
    with fake_upstream() as (fake, _), serve(upstream_settings(fake, "chat", data_dir)) as base_url:
        fake.script = [Reply(code="1 + 1"), Reply(text="2"), Reply(status=400)]
        sdk_for(base_url).responses.create(model="m", input="add", tools=AUTO)
        failed = httpx.post(f"{base_url}/v1/responses", json={"model": "m", "input": "again"}, timeout=30)
        assert failed.status_code == 502  # the upstream's 400 is a bad gateway to the client
        samples = _samples(base_url)
    turns = {labels: n for (name, labels), n in samples.items() if name == "kernelgate_upstream_requests_total"}
    assert turns == {
        (("api", "chat"), ("outcome", "ok"), ("provider", "default")): 2,
        (("api", "chat"), ("outcome", "http_400"), ("provider", "default")): 1,
    }
    tokens = {labels: n for (name, labels), n in samples.items() if name == "kernelgate_upstream_tokens_total"}
    assert tokens == {
        (("kind", "input"), ("provider", "default")): 20,
        (("kind", "output"), ("provider", "default")): 10,
    }


def test_json_logs_name_the_request_response_and_container(data_dir: Path, tmp_path: Path) -> None:
    """`kernelgate serve` with KERNELGATE_LOG_FORMAT=json: every line is an object; a response's lines
    carry its request id, response id and container id."""
    port = _free_port()
    env = {
        **os.environ,
        "KERNELGATE_DATA_DIR": str(data_dir),
        "KERNELGATE_IMAGE": IMAGE,
        "KERNELGATE_LOG_FORMAT": "json",
        "KERNELGATE_POOL": "0",
    }
    log_path = tmp_path / "gateway.log"
    with log_path.open("wb") as log_file:
        command = [sys.executable, "-m", "gateway", "serve", "--port", str(port)]
        gateway = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT)
        try:
            base_url = f"http://127.0.0.1:{port}"
            _wait_until_up(base_url, gateway)
            answer = httpx.post(
                f"{base_url}/v1/responses",
                json={"model": "kernelgate/exec", "input": "print(1)", "tools": AUTO},
                timeout=60,
            )
            assert answer.status_code == 200, answer.text
        finally:
            gateway.terminate()
            gateway.wait(30)
            asyncio.run(remove_sandboxes(gateway_settings(data_dir)))  # the container it left for adoption
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    body = answer.json()
    container_id = next(item["container_id"] for item in body["output"] if item["type"] == "code_interpreter_call")
    access = [line for line in lines if line["logger"] == "kernelgate.access" and "/v1/responses" in line["message"]]
    assert len(access) == 1
    assert access[0]["request_id"] == answer.headers["x-request-id"]
    assert access[0]["response_id"] == body["id"]
    assert access[0]["container_id"] == container_id
    assert any("playground" in line["message"] and "/metrics" in line["message"] for line in lines)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_up(base_url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "the gateway exited"
        try:
            if httpx.get(f"{base_url}/health", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    msg = "the gateway did not come up"
    raise AssertionError(msg)


def test_kernelgate_status_says_what_the_openai_shapes_do_not(data_dir: Path) -> None:
    """GET /kernelgate/v1/status: the names to pick from and where other names go, each running
    container's memory in use and expiry, the pool."""
    settings = gateway_settings(data_dir, upstream_base_url="http://127.0.0.1:9/v1", pool={"1g": 1})
    with serve(settings) as base_url:
        made = sdk_for(base_url).containers.create(name="measured")
        status = httpx.get(f"{base_url}/kernelgate/v1/status", timeout=30).json()
    assert status["models"] == ["kernelgate/exec"]  # the built-in providers have no keys here
    assert status["default_upstream"] == "http://127.0.0.1:9/v1 (chat API)"
    (container,) = status["containers"]
    assert container["id"] == made.id
    assert container["memory_limit"] == "1g"
    assert 10 * 1024**2 < container["memory_used_bytes"] < 1024**3  # a live kernel's, from its cgroup
    assert abs(container["expires_at"] - (time.time() + 20 * 60)) < 60
    assert set(status["pool"]) == {"1g"}
