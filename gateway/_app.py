"""The FastAPI application: its lifespan owns the sandbox manager, the store and the services."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.applications import Starlette

from sandbox import SandboxError, SandboxManager

from ._errors import Unavailable
from ._limits import BodyLimit, api_key_check
from ._metrics import CONTENT_TYPE, Metrics
from ._observe import Observe
from ._settings import Settings
from .conversation.loop import ToolLoop
from .conversation.session import SessionService
from .conversation.threads import ConversationService
from .upstreams.router import Cassette, ModelRouter
from .wire.anthropic import ANTHROPIC
from .wire.format import WireFormat, format_for, install_error_handlers
from .wire.gemini import GEMINI
from .wire.openai import OPENAI
from .wire.services import Services
from .workspace.containers import ContainerService
from .workspace.files import FileService
from .workspace.store import STORE_FILE, Store

__all__ = ["WIRE_FORMATS", "Gateway", "create_app"]

WIRE_FORMATS: list[WireFormat] = [OPENAI, ANTHROPIC, GEMINI]
"""The client wire formats the app serves; the first answers for paths under no format's prefix."""

log = logging.getLogger("kernelgate.gateway")


@dataclass
class Gateway:
    """The app's own state beside the routes' services: the manager, the models, what start-up found."""

    manager: SandboxManager
    models: ModelRouter
    containers: ContainerService
    startup_problem: str | None = None
    """Why sandboxes cannot be made (Docker down, image missing), or None."""
    left_sandboxes: set[str] = field(default_factory=set)
    """Set at shutdown: the sandboxes of running containers, left for the next start to adopt."""

    @classmethod
    def of(cls, app: Starlette) -> Gateway:
        found = app.state.gateway
        assert isinstance(found, Gateway), "the app's lifespan has not run"
        return found


def create_app(settings: Settings | None = None) -> FastAPI:
    """The gateway as an ASGI app; settings default to the environment's."""
    settings = settings or Settings.from_env()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = Store(settings.data_dir / STORE_FILE)
        for wire in WIRE_FORMATS:
            if wire.upgrade_store:
                wire.upgrade_store(store)
        files = FileService(store, settings.data_dir / "files")
        manager = SandboxManager(settings.sandbox_config(pool=True))
        metrics.read_gauges(lambda: _gauges(manager))
        containers = ContainerService(manager, store, files, settings.expiry_minute_seconds, metrics)
        loop = ToolLoop(containers, settings.execution_timeout, settings.max_iterations, metrics)
        models = ModelRouter(
            settings.all_providers(),
            settings.default_provider(),
            timeout=settings.upstream_timeout,
            cassette=Cassette(settings.cassette, settings.cassette_mode) if settings.cassette else None,
            default_api=settings.upstream_api,
            metrics=metrics,
        )
        conversations = ConversationService(store)
        sessions = SessionService(store, containers, loop, models, conversations)
        if interrupted := sessions.fail_interrupted():
            log.warning("%d background responses were cut off by the last stop: kept as failed", interrupted)
        app.state.services = Services(containers, files, sessions, conversations)
        gateway = app.state.gateway = Gateway(manager, models, containers)
        await _start_manager(gateway)
        try:
            yield
        finally:
            # Live sandboxes stay up for the next start to adopt: a restart loses no container.
            await sessions.close()
            gateway.left_sandboxes = containers.owned_sandboxes()
            log.info("Leaving %d sandboxes for the next start to adopt", len(gateway.left_sandboxes))
            await manager.close(remove_sandboxes=False)
            await models.close()
            store.close()

    app = FastAPI(title="kernelgate", version="0.1.0", lifespan=lifespan)
    install_error_handlers(app, WIRE_FORMATS)
    app.add_middleware(
        BodyLimit,
        upload_bytes=settings.max_upload_bytes,
        json_bytes=settings.max_json_bytes,
        render=lambda exc, path: format_for(path, WIRE_FORMATS).too_large(exc),
    )
    app.add_middleware(Observe, metrics=metrics)
    app.add_api_route("/health", health, methods=["GET"], summary="Docker and kernel image status")
    guard = [Depends(api_key_check(settings.api_key))]

    async def scrape() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    app.add_api_route("/metrics", scrape, methods=["GET"], dependencies=guard, summary="Prometheus metrics")
    app.add_api_route("/", playground, methods=["GET"], include_in_schema=False)
    app.add_api_route(
        "/kernelgate/v1/status",
        kernelgate_status,
        methods=["GET"],
        dependencies=[*guard, Depends(_sandboxes_ready)],
        summary="kernelgate's own: the models, the running containers' memory and expiry, the pool",
    )
    for wire in WIRE_FORMATS:
        for mounted in wire.routers:
            ready = [Depends(_sandboxes_ready)] if mounted.needs_sandboxes else []
            app.include_router(mounted.router, dependencies=[*guard, *ready])
    return app


def _gauges(manager: SandboxManager) -> dict[str, dict[str, int]]:
    live = Counter(sandbox.spec.memory_limit for sandbox in manager.sandboxes())
    return {"sandboxes": dict(live), "pool": manager.pool_sizes()}


async def _start_manager(gateway: Gateway) -> None:
    """Start the sandbox manager; when Docker is down, serve anyway so that /health says why."""
    try:
        await gateway.manager.start()
        await gateway.containers.reconcile()
    except SandboxError as exc:
        log.error("Sandboxes are unavailable: %s", exc)
        gateway.startup_problem = str(exc)
    else:
        gateway.startup_problem = None


async def _sandboxes_ready(request: Request) -> None:
    """Routes that need sandboxes: retry a failed start (Docker may be up now), else say why not."""
    gateway = Gateway.of(request.app)
    if gateway.startup_problem:
        await _start_manager(gateway)
        if gateway.startup_problem:
            raise Unavailable(gateway.startup_problem)


_PLAYGROUND = Path(__file__).with_name("playground") / "index.html"


async def playground() -> HTMLResponse:
    """The playground page (gateway/playground/index.html): it uses the public API only."""
    return HTMLResponse(await asyncio.to_thread(_PLAYGROUND.read_text))


async def kernelgate_status(request: Request) -> JSONResponse:
    """What the OpenAI-shaped APIs do not say: the model names to pick from (kernelgate/exec, and a
    `Name/` prefix per provider with its key set) and where any other name goes, each running container's
    memory in use and expiry (Unix seconds), and the warm pool's ready sandboxes per memory limit."""
    gateway = Gateway.of(request.app)
    containers = [
        {
            "id": record.id,
            "memory_limit": record.memory_limit,
            "memory_used_bytes": sandbox.memory_used(),
            "expires_at": int(sandbox.expires_at),
            "from_pool": sandbox.from_pool,
        }
        for record, sandbox in gateway.containers.running()
    ]
    body = {
        "models": gateway.models.names(),
        "default_upstream": gateway.models.default_upstream(),
        "containers": containers,
        "pool": gateway.manager.pool_sizes(),
    }
    return JSONResponse(body)


async def health(request: Request) -> JSONResponse:
    """200 when sandboxes can be created; 503 with the reason when they cannot."""
    gateway = Gateway.of(request.app)
    if gateway.startup_problem:  # Docker may have come up since
        await _start_manager(gateway)
    status = await gateway.manager.status()
    problem = status.problem or gateway.startup_problem
    body = {
        "status": "unavailable" if problem else "ok",
        "reason": problem,
        "docker": {"reachable": status.docker_version is not None, "version": status.docker_version},
        "image": {"name": status.image, "present": status.image_id is not None, "id": status.image_id},
        "sandboxes": len(gateway.manager.sandboxes()),
        "pool": gateway.manager.pool_sizes(),
        "disk_limit": status.disk_limit,
        "runtime": status.runtime,
    }
    return JSONResponse(body, status_code=503 if problem else 200)
