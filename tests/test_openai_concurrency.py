"""Twenty clients at once: every request succeeds and nothing is left behind."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker

from gateway.testing import serve

from .conftest import gateway_settings, labelled, sdk_for


def _one_client(base_url: str, number: int) -> bytes:
    sdk = sdk_for(base_url, timeout=120)
    created = sdk.containers.create(name=f"client-{number}", memory_limit="1g")
    payload = f"client {number}\n".encode()
    uploaded = sdk.containers.files.create(created.id, file=(f"c{number}.txt", payload))
    assert [f.id for f in sdk.containers.files.list(created.id)] == [uploaded.id]
    content = sdk.containers.files.content.retrieve(uploaded.id, container_id=created.id).read()
    sdk.containers.delete(created.id)
    return content


def test_twenty_clients_create_use_and_delete_at_once(data_dir: Path, docker_client: docker.DockerClient) -> None:
    """All 20 round trips succeed with their own data, and no Docker container remains."""
    with serve(gateway_settings(data_dir), purge=False) as base_url:
        with ThreadPoolExecutor(max_workers=20) as pool:
            contents = list(pool.map(lambda n: _one_client(base_url, n), range(20)))
        assert contents == [f"client {n}\n".encode() for n in range(20)]
        left = labelled(docker_client, f"kernelgate.data_dir={data_dir}")
        assert left == []
