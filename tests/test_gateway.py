"""The gateway over real HTTP: health reports what stands between the user and a sandbox."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway import Settings
from gateway.conversation.record import StoredResponse
from gateway.testing import serve
from gateway.upstreams.providers import Provider
from gateway.upstreams.registry import REGISTRY, upstream_class

from .conftest import IMAGE, gateway_settings, sdk_for
from .responses import AUTO, OUTPUTS, RUNS_UNTIL_STOPPED, calls, logs, wait_until_started


def _health(settings: Settings) -> httpx.Response:
    with serve(settings) as base_url:
        return httpx.get(f"{base_url}/health", timeout=30)


def test_health_is_ok_with_docker_and_the_image(data_dir: Path) -> None:
    """200, with the engine's version and the image's id."""
    response = _health(gateway_settings(data_dir))
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["reason"] is None
    assert body["docker"]["reachable"] is True
    assert body["docker"]["version"]
    assert body["image"] == {"name": IMAGE, "present": True, "id": body["image"]["id"]}
    assert body["image"]["id"].startswith("sha256:")
    assert body["pool"] == {}  # a test gateway runs no warm pool unless it asks (the shared one does)


def test_health_is_503_when_docker_is_unreachable(data_dir: Path) -> None:
    """503, naming Docker and what to do about it."""
    response = _health(gateway_settings(data_dir, docker_host="unix:///nonexistent/docker.sock"))
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["docker"]["reachable"] is False
    assert "Docker" in body["reason"]
    assert "DOCKER_HOST" in body["reason"]


def test_health_is_503_when_the_image_is_missing(data_dir: Path) -> None:
    """503, saying to build the image."""
    response = _health(gateway_settings(data_dir, image="kernelgate/kernel:missing"))
    assert response.status_code == 503
    body = response.json()
    assert body["image"]["present"] is False
    assert "make image" in body["reason"]


def test_settings_errors_name_the_variable() -> None:
    """A bad environment value fails at start-up with the variable's name."""
    import pytest

    from gateway import SettingsError

    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"KERNELGATE_PORT": "eighty", "HOME": "/tmp"})
    assert "KERNELGATE_PORT" in str(caught.value)
    assert Settings.from_env({"HOME": "/home/u"}).data_dir == Path("/home/u/.local/share/kernelgate")


def test_an_unknown_upstream_api_names_the_variable_and_the_apis() -> None:
    """KERNELGATE_UPSTREAM_API and a providers table's `api` must be a registered API; the error lists them."""
    from gateway import SettingsError

    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"KERNELGATE_UPSTREAM_API": "cohere", "HOME": "/tmp"})
    assert "KERNELGATE_UPSTREAM_API" in str(caught.value)
    assert "'chat', 'responses', 'anthropic', 'gemini'" in str(caught.value)


@pytest.mark.parametrize("api", list(REGISTRY))
async def test_every_registered_api_has_a_client_that_serves_models(api: str) -> None:
    """Each registry line names a module and class that exist and make models: a new API is that line and
    that module."""
    provider = Provider(api=api, base_url="http://127.0.0.1:9", api_key="unused")
    upstream = upstream_class(api)(provider, 5, None)
    try:
        model = upstream.model("Name/model", "model")
        assert model.name == "Name/model"
    finally:
        await upstream.aclose()


def test_each_wire_format_answers_errors_under_its_own_prefix() -> None:
    """An error under a format's prefix is worded by that format; a path under none by the first (OpenAI's)."""
    from fastapi import APIRouter, FastAPI, Request
    from fastapi.responses import JSONResponse
    from starlette.responses import Response

    from gateway._errors import InvalidRequest
    from gateway.testing import run_app
    from gateway.wire.format import WireFormat, WireRouter, install_error_handlers
    from gateway.wire.openai import OPENAI

    async def plain(request: Request, exc: Exception) -> Response:
        return JSONResponse({"type": "error", "error": {"message": str(exc)}}, status_code=418)

    router = APIRouter(prefix="/other")

    @router.get("/fails")
    async def fails() -> None:
        msg = "worded by the other format"
        raise InvalidRequest(msg)

    other = WireFormat(
        "other", "/other", [WireRouter(router)], {Exception: plain}, lambda exc: Response(status_code=413)
    )
    app = FastAPI()
    app.include_router(router)
    install_error_handlers(app, [OPENAI, other])
    with run_app(app) as base_url:
        mine = httpx.get(f"{base_url}/other/fails")
        unknown_mine = httpx.get(f"{base_url}/other/nowhere")
        unknown = httpx.get(f"{base_url}/elsewhere")
    assert (mine.status_code, mine.json()) == (
        418,
        {"type": "error", "error": {"message": "worded by the other format"}},
    )
    assert unknown_mine.status_code == 418
    assert unknown.status_code == 404
    assert unknown.json()["error"]["message"] == "Invalid URL (GET /elsewhere)"


def test_responses_an_older_kernelgate_stored_are_kept(data_dir: Path) -> None:
    """kernelgate 0.1 kept each response as its OpenAI body beside its items: a start moves them into the
    neutral record, GET returns the same body, and a follow-up continues the conversation in its container."""
    settings = gateway_settings(data_dir)
    with serve(settings, purge=False) as base_url:
        client = sdk_for(base_url)
        first = client.responses.create(model="kernelgate/exec", input="```python\nx = 41\nprint(x)\n```", tools=AUTO)
        body = client.responses.retrieve(first.id).model_dump(mode="json")
    db = sqlite3.connect(data_dir / "kernelgate.db")
    (data,) = db.execute("SELECT data FROM stored_responses WHERE id = ?", [first.id]).fetchone()
    stored = StoredResponse.model_validate_json(data)
    items = json.dumps([item.model_dump(mode="json") for item in stored.conversation])
    with db:
        db.execute("DROP TABLE stored_responses")
        db.execute(
            "CREATE TABLE responses (id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, body TEXT NOT NULL,"
            " items TEXT NOT NULL, container_id TEXT)"
        )
        db.execute(
            "INSERT INTO responses VALUES (?, ?, ?, ?, ?)",
            [first.id, stored.created_at, json.dumps(body), items, stored.container_id],
        )
    db.close()

    with serve(settings) as base_url:
        client = sdk_for(base_url)
        assert client.responses.retrieve(first.id).model_dump(mode="json") == body
        follow = client.responses.create(
            model="kernelgate/exec",
            input="```python\nprint(x + 1)\n```",
            tools=AUTO,
            include=OUTPUTS,
            previous_response_id=first.id,
        )
        assert [logs(call) for call in calls(follow)] == ["42\n"]
    db = sqlite3.connect(data_dir / "kernelgate.db")
    assert not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'responses'").fetchall()
    (data,) = db.execute("SELECT data FROM stored_responses WHERE id = ?", [follow.id]).fetchone()
    db.close()
    assert list(StoredResponse.model_validate_json(data).history) == stored.conversation


def test_a_background_response_cut_off_by_a_stop_is_kept_as_failed(data_dir: Path) -> None:
    """The gateway stops while a background response runs: its code is interrupted, and after the restart
    GET says it failed, and why."""
    settings = gateway_settings(data_dir)
    with serve(settings) as base_url:
        client = sdk_for(base_url)
        container = client.containers.create(name="bg")
        tools: Any = [{"type": "code_interpreter", "container": container.id}]
        started = client.responses.create(
            model="kernelgate/exec", input=RUNS_UNTIL_STOPPED, tools=tools, background=True
        )
        wait_until_started(client, container.id)
    with serve(settings) as base_url:
        stored = sdk_for(base_url).responses.retrieve(started.id)
    assert stored.status == "failed"
    assert stored.error is not None
    assert stored.error.message == "The gateway stopped while this background response ran."


def test_a_conversation_survives_a_restart(data_dir: Path) -> None:
    settings = gateway_settings(data_dir)
    with serve(settings, purge=False) as base_url:
        client = sdk_for(base_url)
        conversation = client.conversations.create()
        client.responses.create(model="kernelgate/exec", input="y = 6 * 7", tools=AUTO, conversation=conversation.id)
    with serve(settings) as base_url:
        client = sdk_for(base_url)
        follow = client.responses.create(
            model="kernelgate/exec", input="print(y)", tools=AUTO, include=OUTPUTS, conversation=conversation.id
        )
        assert [logs(call) for call in calls(follow)] == ["42\n"]
        assert len(client.conversations.items.list(conversation.id).data) == 6
