"""The Files API through the official openai SDK over real HTTP."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest

from gateway.testing import serve

from .conftest import gateway_settings, sdk_for


def test_upload_retrieve_download_and_delete(client: openai.OpenAI) -> None:
    """A file goes up, is processed at once, reads back byte for byte, and is gone after delete."""
    payload = bytes(range(256)) * 64
    created = client.files.create(file=("table.bin", payload), purpose="user_data")
    assert created.id.startswith("file-")
    assert (created.object, created.bytes, created.filename, created.purpose) == (
        "file",
        len(payload),
        "table.bin",
        "user_data",
    )
    assert client.files.wait_for_processing(created.id).status == "processed"
    assert client.files.retrieve(created.id) == created
    assert client.files.content(created.id).read() == payload
    deleted = client.files.delete(created.id)
    assert (deleted.id, deleted.deleted) == (created.id, True)
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(created.id)


def test_listing_pages_through_every_file(client: openai.OpenAI) -> None:
    """With limit=2 the SDK pages with `after` until has_more is false, newest first by default."""
    ids = [client.files.create(file=(f"f{i}.txt", b"x"), purpose="assistants").id for i in range(5)]
    first = client.files.list(limit=2, purpose="assistants")
    assert len(first.data) == 2
    assert first.has_more
    listed = [f.id for f in client.files.list(limit=2, purpose="assistants")]
    assert [i for i in listed if i in ids] == list(reversed(ids))
    oldest_first = [f.id for f in client.files.list(limit=2, purpose="assistants", order="asc")]
    assert [i for i in oldest_first if i in ids] == ids


def test_unknown_file_is_a_404_in_openai_shape(client: openai.OpenAI) -> None:
    """The SDK raises NotFoundError with OpenAI's message, type and param."""
    with pytest.raises(openai.NotFoundError) as caught:
        client.files.retrieve("file-doesnotexist")
    assert caught.value.body == {
        "message": "No such File object: file-doesnotexist",
        "type": "invalid_request_error",
        "param": "id",
        "code": None,
    }


def test_bad_purpose_is_a_400_naming_the_field(client: openai.OpenAI) -> None:
    """An unknown purpose is refused with param 'purpose' and the allowed values."""
    with pytest.raises(openai.BadRequestError) as caught:
        client.files.create(file=("a.txt", b"a"), purpose="nonsense")  # type: ignore[arg-type]
    assert caught.value.param == "purpose"
    assert "user_data" in caught.value.message


def test_file_names_are_sanitised(client: openai.OpenAI) -> None:
    """Path parts in an uploaded name are dropped: nothing is written outside the data directory."""
    created = client.files.create(file=("../../etc/passwd", b"x"), purpose="user_data")
    assert created.filename == "passwd"


def test_expiring_file_reports_expires_at(client: openai.OpenAI) -> None:
    """expires_after sets expires_at from the creation time."""
    created = client.files.create(
        file=("soon.txt", b"x"), purpose="user_data", expires_after={"anchor": "created_at", "seconds": 3600}
    )
    assert created.expires_at == created.created_at + 3600


def test_uploads_over_the_limit_are_413_and_store_nothing(data_dir: Path) -> None:
    """A body past KERNELGATE_MAX_UPLOAD_BYTES is refused, by Content-Length or streamed, on both upload routes."""
    settings = gateway_settings(data_dir, max_upload_bytes=100_000)
    with serve(settings) as base_url:
        sdk = sdk_for(base_url)
        with pytest.raises(openai.APIStatusError) as caught:
            sdk.files.create(file=("big.bin", b"x" * 300_000), purpose="user_data")
        assert caught.value.status_code == 413
        assert "KERNELGATE_MAX_UPLOAD_BYTES" in caught.value.message

        def chunked() -> object:
            yield b'--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nuser_data\r\n'
            yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n\r\n'
            for _ in range(30):
                yield b"x" * 10_000
            yield b"\r\n--b--\r\n"

        response = httpx.post(
            f"{base_url}/v1/files",
            content=chunked(),  # type: ignore[arg-type]
            headers={"content-type": "multipart/form-data; boundary=b"},
        )
        assert response.status_code == 413
        assert response.json()["error"]["type"] == "invalid_request_error"
        assert sdk.files.list().data == []

        container = sdk.containers.create(name="small uploads")
        sdk.containers.files.create(container.id, file=("kept.txt", b"kept"))
        with pytest.raises(openai.APIStatusError) as refused:
            sdk.containers.files.create(container.id, file=("big.bin", b"x" * 300_000))
        assert refused.value.status_code == 413
        assert "KERNELGATE_MAX_UPLOAD_BYTES" in refused.value.message
        (kept,) = sdk.containers.files.list(container.id)
        assert kept.path.endswith("-kept.txt")
    assert list((data_dir / "files").iterdir()) == []
