"""The FastAPI application: its lifespan owns the sandbox manager."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from sandbox import SandboxError, SandboxManager

from ._settings import Settings

__all__ = ["create_app"]

log = logging.getLogger("kernelgate.gateway")


def create_app(settings: Settings | None = None) -> FastAPI:
    """The gateway as an ASGI app; settings default to the environment's."""
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.manager = SandboxManager(settings.sandbox_config())
        await _start_manager(app)
        try:
            yield
        finally:
            await app.state.manager.close()

    app = FastAPI(title="kernelgate", version="0.1.0", lifespan=lifespan)
    app.add_api_route("/health", health, methods=["GET"], summary="Docker and kernel image status")
    return app


async def _start_manager(app: FastAPI) -> None:
    """Start the sandbox manager; when Docker is down, serve anyway so that /health says why."""
    try:
        await app.state.manager.start()
    except SandboxError as exc:
        log.error("Sandboxes are unavailable: %s", exc)
        app.state.startup_problem = str(exc)
    else:
        app.state.startup_problem = None


async def health(request: Request) -> JSONResponse:
    """200 when sandboxes can be created; 503 with the reason when they cannot."""
    manager: SandboxManager = request.app.state.manager
    if request.app.state.startup_problem:  # Docker may have come up since
        await _start_manager(request.app)
    status = await manager.status()
    problem = status.problem or request.app.state.startup_problem
    body = {
        "status": "unavailable" if problem else "ok",
        "reason": problem,
        "docker": {"reachable": status.docker_version is not None, "version": status.docker_version},
        "image": {"name": status.image, "present": status.image_id is not None, "id": status.image_id},
        "sandboxes": len(manager.sandboxes()),
    }
    return JSONResponse(body, status_code=503 if problem else 200)
