"""The FastAPI application: its lifespan owns the sandbox manager, the store and the services."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from sandbox import SandboxError, SandboxManager

from ._errors import Unavailable
from ._limits import BodyLimit, api_key_check
from ._settings import Settings
from .conversation.loop import ToolLoop
from .upstreams.router import Cassette, ModelRouter
from .wire.openai import containers_router, error_response, files_router, install_error_handlers, responses_router
from .workspace.containers import ContainerService
from .workspace.files import FileService
from .workspace.store import Store

__all__ = ["create_app"]

log = logging.getLogger("kernelgate.gateway")


def create_app(settings: Settings | None = None) -> FastAPI:
    """The gateway as an ASGI app; settings default to the environment's."""
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = Store(settings.data_dir / "kernelgate.db")
        files = FileService(store, settings.data_dir / "files")
        app.state.manager = SandboxManager(settings.sandbox_config())
        app.state.files = files
        app.state.containers = ContainerService(app.state.manager, store, files, settings.expiry_minute_seconds)
        app.state.store = store
        app.state.loop = ToolLoop(app.state.containers, settings.execution_timeout, settings.max_iterations)
        app.state.models = ModelRouter(
            settings.all_providers(),
            settings.default_provider(),
            timeout=settings.upstream_timeout,
            cassette=Cassette(settings.cassette, settings.cassette_mode) if settings.cassette else None,
            default_api=settings.upstream_api,
        )
        await _start_manager(app)
        try:
            yield
        finally:
            # Live sandboxes stay up for the next start to adopt: a restart loses no container.
            app.state.left_sandboxes = app.state.containers.owned_sandboxes()
            log.info("Leaving %d sandboxes for the next start to adopt", len(app.state.left_sandboxes))
            await app.state.manager.close(remove_sandboxes=False)
            await app.state.models.close()
            store.close()

    app = FastAPI(title="kernelgate", version="0.1.0", lifespan=lifespan)
    install_error_handlers(app)
    app.add_middleware(
        BodyLimit,
        upload_bytes=settings.max_upload_bytes,
        json_bytes=settings.max_json_bytes,
        render=lambda exc: error_response(413, str(exc)),
    )
    app.add_api_route("/health", health, methods=["GET"], summary="Docker and kernel image status")
    guard = [Depends(api_key_check(settings.api_key))]
    app.include_router(containers_router, dependencies=[*guard, Depends(_sandboxes_ready)])
    app.include_router(responses_router, dependencies=[*guard, Depends(_sandboxes_ready)])
    app.include_router(files_router, dependencies=guard)  # files need no Docker
    return app


async def _start_manager(app: FastAPI) -> None:
    """Start the sandbox manager; when Docker is down, serve anyway so that /health says why."""
    try:
        await app.state.manager.start()
        await app.state.containers.reconcile()
    except SandboxError as exc:
        log.error("Sandboxes are unavailable: %s", exc)
        app.state.startup_problem = str(exc)
    else:
        app.state.startup_problem = None


async def _sandboxes_ready(request: Request) -> None:
    """Routes that need sandboxes: retry a failed start (Docker may be up now), else say why not."""
    if request.app.state.startup_problem:
        await _start_manager(request.app)
        if request.app.state.startup_problem:
            raise Unavailable(request.app.state.startup_problem)


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
        "disk_limit": status.disk_limit,
        "runtime": status.runtime,
    }
    return JSONResponse(body, status_code=503 if problem else 200)
