"""Run kernelgate inside your own test suite: a real server on loopback, in a background thread.

    with serve(Settings(data_dir=tmp_path)) as base_url:
        client = openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused")

kernelgate's own tests use exactly this.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import uvicorn
from starlette.types import ASGIApp

from sandbox import DockerUnavailable, SandboxManager

from ._app import create_app
from ._settings import Settings

__all__ = ["SandboxLeak", "remove_sandboxes", "run_app", "serve"]

T = TypeVar("T")


class SandboxLeak(AssertionError):
    """The gateway left containers in Docker that no container of its API owned: a kernelgate bug."""

    def __init__(self, sandbox_ids: list[str]) -> None:
        self.sandbox_ids = sandbox_ids
        super().__init__(f"the gateway left sandboxes no container owned (removed now): {', '.join(sandbox_ids)}")


@contextlib.contextmanager
def serve(settings: Settings, *, port: int = 0, startup_timeout: float = 60.0, purge: bool = True) -> Iterator[str]:
    """Serve the gateway on `settings.host` and `port` (0 picks a free one); yields the base URL.

    On exit the server shuts down. A gateway leaves the sandboxes of its live containers for the next
    start to adopt; with `purge` (the default here) they are removed, so a test suite leaks no
    container, and any other sandbox found in Docker raises SandboxLeak. Use purge=False to restart a
    gateway on the same data directory and find its containers again.
    """
    app = create_app(settings)
    try:
        with run_app(app, settings.host, port, startup_timeout) as base_url:
            yield base_url
    finally:
        if purge:
            with contextlib.suppress(DockerUnavailable):  # no engine: it holds no sandbox of ours
                removed = _run_apart(lambda: asyncio.run(remove_sandboxes(settings)))
                left = app.state.gateway.left_sandboxes if hasattr(app.state, "gateway") else set()
                unowned = sorted(set(removed) - left)
                if unowned:
                    raise SandboxLeak(unowned)


@contextlib.contextmanager
def run_app(app: ASGIApp, host: str = "127.0.0.1", port: int = 0, startup_timeout: float = 60.0) -> Iterator[str]:
    """Any ASGI app (a fake upstream model, say) on loopback in a background thread; yields its base URL."""
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="kernelgate-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            msg = "the test server did not start; see the log above"
            raise RuntimeError(msg)
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(startup_timeout)


def _run_apart(work: Callable[[], T]) -> T:
    """Run `work` in a thread of its own: the caller's thread may be running an event loop (a test's,
    or a browser driver's), in which asyncio.run cannot start."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kernelgate-test-cleanup") as thread:
        return thread.submit(work).result()


async def remove_sandboxes(settings: Settings) -> list[str]:
    """Remove every sandbox left in the settings' data directory (no gateway may be running on it); their ids."""
    config = settings.sandbox_config().model_copy(update={"adopt": False})
    async with SandboxManager(config) as manager:
        return list(manager.recovery.removed)
