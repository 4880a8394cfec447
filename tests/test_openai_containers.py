"""The Containers and Container Files APIs through the official openai SDK, over real HTTP and Docker."""

from __future__ import annotations

import re
import time
from pathlib import Path

import docker
import httpx
import openai
import pytest

from gateway import Settings
from gateway.testing import serve

from .conftest import IMAGE, container_of, gateway_settings, labelled, run_in, sdk_for


def test_create_has_openai_defaults(client: openai.OpenAI, docker_client: docker.DockerClient) -> None:
    """A new container runs with the 1g tier, a 20-minute idle expiry and no network, as one Docker container."""
    created = client.containers.create(name="defaults")
    assert re.fullmatch(r"cntr_[0-9a-f]{48}", created.id)
    assert int(created.id[5:13], 16) == created.created_at
    assert (created.object, created.name, created.status, created.memory_limit) == (
        "container",
        "defaults",
        "running",
        "1g",
    )
    assert created.expires_after is not None
    assert (created.expires_after.anchor, created.expires_after.minutes) == ("last_active_at", 20)
    assert created.network_policy is not None
    assert created.network_policy.type == "disabled"
    backing = container_of(docker_client, created.id)
    assert backing is not None
    assert backing.attrs["HostConfig"]["Memory"] == 1024**3
    assert backing.attrs["HostConfig"]["NetworkMode"] == "none"
    client.containers.delete(created.id)


def test_memory_tier_is_the_container_limit(client: openai.OpenAI, docker_client: docker.DockerClient) -> None:
    """memory_limit '4g' becomes a 4 GiB Docker memory limit."""
    created = client.containers.create(name="big", memory_limit="4g")
    assert created.memory_limit == "4g"
    backing = container_of(docker_client, created.id)
    assert backing is not None
    assert backing.attrs["HostConfig"]["Memory"] == 4 * 1024**3
    client.containers.delete(created.id)


def test_the_cpu_quota_is_kernelgate_cpus(data_dir: Path, docker_client: docker.DockerClient) -> None:
    """KERNELGATE_CPUS sets each container's CPU quota."""
    settings = Settings.from_env(
        {"KERNELGATE_DATA_DIR": str(data_dir), "KERNELGATE_IMAGE": IMAGE, "KERNELGATE_CPUS": "0.5"}
    )
    with serve(settings) as base_url:
        created = sdk_for(base_url).containers.create(name="half a cpu")
        backing = container_of(docker_client, created.id)
        assert backing is not None
        assert backing.attrs["HostConfig"]["NanoCpus"] == 500_000_000


@pytest.mark.parametrize(
    ("body", "param", "said"),
    [
        ({"name": "x", "memory_limit": "2g"}, "memory_limit", "'1g', '4g', '16g' or '64g'"),
        ({}, "name", "Missing required parameter"),
        (
            {"name": "x", "expires_after": {"anchor": "last_active_at", "minutes": 0}},
            "expires_after.minutes",
            "greater than or equal to 1",
        ),
        (
            {"name": "x", "network_policy": {"type": "allowlist", "allowed_domains": ["pypi.org"]}},
            "network_policy",
            "not supported",
        ),
    ],
)
def test_invalid_creation_is_a_400_naming_the_field(
    client: openai.OpenAI, body: dict[str, object], param: str, said: str
) -> None:
    """Bad fields get OpenAI's 400 with `param` set, and no container is made."""
    before = {c.id for c in client.containers.list()}
    with pytest.raises(openai.BadRequestError) as caught:
        client.post("/containers", body=body, cast_to=httpx.Response)
    assert caught.value.param == param
    assert said in caught.value.message
    assert caught.value.type == "invalid_request_error"
    assert {c.id for c in client.containers.list()} == before


def test_unknown_file_ids_are_a_404_and_create_nothing(
    client: openai.OpenAI, docker_client: docker.DockerClient
) -> None:
    """One unknown id in file_ids fails the whole creation before any container starts."""
    known = client.files.create(file=("a.txt", b"a"), purpose="user_data")
    before = {c["Id"] for c in labelled(docker_client, "kernelgate.managed=true")}
    with pytest.raises(openai.NotFoundError) as caught:
        client.containers.create(name="x", file_ids=[known.id, "file-missing"])
    assert caught.value.body["message"] == "No such File object: file-missing"  # type: ignore[index]
    assert caught.value.param == "file_ids"
    # No new container (others of the suite may be going away meanwhile, which does not matter).
    assert {c["Id"] for c in labelled(docker_client, "kernelgate.managed=true")} <= before


def test_file_ids_are_in_mnt_data_for_the_code(client: openai.OpenAI, docker_client: docker.DockerClient) -> None:
    """Files named at creation are user files at /mnt/data/<hex>-<name>, readable inside the sandbox."""
    upload = client.files.create(file=("data.csv", b"a,b\n1,2\n"), purpose="user_data")
    created = client.containers.create(name="with-files", file_ids=[upload.id])
    (listed,) = client.containers.files.list(created.id).data
    assert re.fullmatch(r"/mnt/data/[0-9a-f]{32}-data\.csv", listed.path)
    assert (listed.source, listed.bytes, listed.container_id) == ("user", 8, created.id)
    assert re.fullmatch(r"cfile_[0-9a-f]{32}", listed.id)
    backing = container_of(docker_client, created.id)
    assert backing is not None
    assert run_in(backing, f"cat {listed.path}") == "a,b\n1,2\n"
    client.containers.delete(created.id)


def test_container_files_upload_json_list_download_delete(client: openai.OpenAI) -> None:
    """Files go in by multipart or by file_id, list with pagination, download, and delete."""
    created = client.containers.create(name="files")
    uploaded = client.containers.files.create(created.id, file=("notes.txt", b"hello"))
    source = client.files.create(file=("copy.txt", b"copied"), purpose="user_data")
    copied = client.containers.files.create(created.id, file_id=source.id)
    assert (uploaded.source, copied.source) == ("user", "user")
    assert client.containers.files.retrieve(copied.id, container_id=created.id).model_dump() == copied.model_dump()
    assert client.containers.files.content.retrieve(uploaded.id, container_id=created.id).read() == b"hello"
    assert client.containers.files.content.retrieve(copied.id, container_id=created.id).read() == b"copied"
    pages = client.containers.files.list(created.id, limit=1)
    assert len(pages.data) == 1
    assert pages.has_more
    assert {f.id for f in client.containers.files.list(created.id, limit=1)} == {uploaded.id, copied.id}
    client.containers.files.delete(uploaded.id, container_id=created.id)
    assert [f.id for f in client.containers.files.list(created.id)] == [copied.id]
    with pytest.raises(openai.NotFoundError):
        client.containers.files.retrieve(uploaded.id, container_id=created.id)
    client.containers.delete(created.id)


def test_files_written_by_code_are_assistant_files(client: openai.OpenAI, docker_client: docker.DockerClient) -> None:
    """A file the code writes in /mnt/data is listed with source 'assistant' and downloads intact."""
    created = client.containers.create(name="code-writes")
    backing = container_of(docker_client, created.id)
    assert backing is not None
    run_in(backing, "mkdir -p /mnt/data/out && printf 'x,y\\n3,4\\n' > /mnt/data/out/result.csv")
    (made,) = client.containers.files.list(created.id).data
    assert (made.path, made.source, made.bytes) == ("/mnt/data/out/result.csv", "assistant", 8)
    assert client.containers.files.content.retrieve(made.id, container_id=created.id).read() == b"x,y\n3,4\n"
    run_in(backing, "rm /mnt/data/out/result.csv")
    assert client.containers.files.list(created.id).data == []
    client.containers.delete(created.id)


def test_listing_containers_pages_orders_and_filters_by_name(client: openai.OpenAI) -> None:
    """limit and after page through, order flips, and name filters."""
    ids = [client.containers.create(name="listed").id for _ in range(3)]
    newest_first = [c.id for c in client.containers.list(limit=1, name="listed")]
    assert newest_first == list(reversed(ids))
    assert [c.id for c in client.containers.list(limit=2, name="listed", order="asc")] == ids
    assert client.containers.list(name="no-such-name").data == []
    for container_id in ids:
        client.containers.delete(container_id)


def test_retrieving_refreshes_last_active_at(client: openai.OpenAI) -> None:
    """Any container operation counts as activity."""
    created = client.containers.create(name="active")
    time.sleep(1.1)
    assert (client.containers.retrieve(created.id).last_active_at or 0) > (created.last_active_at or 0)
    client.containers.delete(created.id)


def test_delete_removes_the_docker_container(client: openai.OpenAI, docker_client: docker.DockerClient) -> None:
    """After delete the container is gone from Docker and from the API."""
    created = client.containers.create(name="doomed")
    assert container_of(docker_client, created.id) is not None
    client.containers.delete(created.id)
    assert container_of(docker_client, created.id) is None
    with pytest.raises(openai.NotFoundError):
        client.containers.retrieve(created.id)


def test_an_idle_container_expires(client: openai.OpenAI, docker_client: docker.DockerClient) -> None:
    """Idle past expires_after (a minute lasts 1 s in this gateway) it reads expired and refuses use."""
    created = client.containers.create(name="short", expires_after={"anchor": "last_active_at", "minutes": 2})
    for _ in range(100):
        if container_of(docker_client, created.id) is None:
            break
        time.sleep(0.1)
    assert container_of(docker_client, created.id) is None
    assert client.containers.retrieve(created.id).status == "expired"
    with pytest.raises(openai.BadRequestError) as caught:
        client.containers.files.create(created.id, file=("late.txt", b"x"))
    assert caught.value.body == {
        "message": "Container is expired.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    with pytest.raises(openai.BadRequestError):
        client.containers.files.list(created.id)
    client.containers.delete(created.id)


def test_errors_keep_openai_shape_for_any_failure(openai_base_url: str) -> None:
    """Unknown routes, wrong methods and malformed JSON all answer {"error": {...}}."""
    unknown = httpx.get(f"{openai_base_url}/v1/nothing-here")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["message"] == "Invalid URL (GET /v1/nothing-here)"
    wrong = httpx.put(f"{openai_base_url}/v1/containers")
    assert wrong.status_code == 405
    assert set(wrong.json()["error"]) == {"message", "type", "param", "code"}
    broken = httpx.post(
        f"{openai_base_url}/v1/containers", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert broken.status_code == 400
    assert "JSON" in broken.json()["error"]["message"]


def test_api_key_is_required_when_configured(data_dir: Path) -> None:
    """With KERNELGATE_API_KEY set, /v1 needs the bearer key; /health stays open."""
    with serve(gateway_settings(data_dir, api_key="sekrit")) as base_url:
        wrong = sdk_for(base_url, api_key="wrong")
        with pytest.raises(openai.AuthenticationError) as caught:
            wrong.files.list()
        assert caught.value.code == "invalid_api_key"
        missing = httpx.get(f"{base_url}/v1/files")
        assert missing.status_code == 401
        assert "Authorization" in missing.json()["error"]["message"]
        sdk = sdk_for(base_url, api_key="sekrit")
        assert sdk.files.list().data == []
        assert httpx.get(f"{base_url}/health").status_code == 200


def test_a_gateway_restart_loses_nothing(data_dir: Path, docker_client: docker.DockerClient) -> None:
    """Files, container metadata, container files and the live kernel container survive a restart."""
    settings = gateway_settings(data_dir)
    with serve(settings, purge=False) as base_url:
        sdk = sdk_for(base_url)
        upload = sdk.files.create(file=("kept.txt", b"kept"), purpose="user_data")
        created = sdk.containers.create(name="survivor", file_ids=[upload.id])
        backing = container_of(docker_client, created.id)
        assert backing is not None
        run_in(backing, "echo made-by-code > /mnt/data/made.txt")
        before = sorted(f.path for f in sdk.containers.files.list(created.id))
    with serve(settings) as base_url:
        sdk = sdk_for(base_url)
        assert sdk.files.content(upload.id).read() == b"kept"
        assert sdk.containers.retrieve(created.id).status == "running"
        assert sorted(f.path for f in sdk.containers.files.list(created.id)) == before
        again = container_of(docker_client, created.id)
        assert again is not None
        assert again.id == backing.id, "the same Docker container, adopted"


def test_openapi_document_lists_the_routes(openai_base_url: str) -> None:
    """FastAPI's OpenAPI document describes every route with its methods and the wire objects."""
    document = httpx.get(f"{openai_base_url}/openapi.json").json()
    paths = document["paths"]
    assert set(paths["/v1/containers"]) == {"get", "post"}
    assert set(paths["/v1/containers/{container_id}"]) == {"get", "delete"}
    assert set(paths["/v1/containers/{container_id}/files"]) == {"get", "post"}
    assert "multipart/form-data" in paths["/v1/containers/{container_id}/files"]["post"]["requestBody"]["content"]
    assert set(paths["/v1/files/{file_id}/content"]) == {"get"}
    container = document["components"]["schemas"]["ContainerObject"]["properties"]
    assert {"id", "object", "name", "created_at", "status", "expires_after", "last_active_at"} <= set(container)


def test_without_docker_containers_are_503_and_files_still_work(data_dir: Path) -> None:
    """An unreachable engine is a 503 that says so (and asks the SDK not to retry); files need no Docker."""
    with serve(gateway_settings(data_dir, docker_host="unix:///nonexistent/docker.sock")) as base_url:
        sdk = sdk_for(base_url)
        with pytest.raises(openai.InternalServerError) as caught:
            sdk.containers.create(name="x")
        assert caught.value.status_code == 503
        assert "Docker" in caught.value.message
        assert caught.value.response.headers["x-should-retry"] == "false"
        assert sdk.files.create(file=("a.txt", b"a"), purpose="user_data").bytes == 1
