"""What a client wire format gives the app: its routes under one prefix, and how it words every error.

The app mounts each format's routers and installs one handler per exception type that hands the
error to the format whose prefix the request's path is under (the longest match; the first format for
paths under none, such as an unknown URL), so an OpenAI route answers in OpenAI's error shape and,
next, an Anthropic route in Anthropic's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import Response

from .._errors import PayloadTooLarge
from ..workspace.store import Store

__all__ = ["Handler", "WireFormat", "WireRouter", "format_for", "install_error_handlers"]

Handler = Callable[[Request, Exception], Awaitable[Response]]


@dataclass(frozen=True)
class WireRouter:
    router: APIRouter
    needs_sandboxes: bool = True
    """Its routes answer 503 while Docker or the image is missing (the Files API needs neither)."""


@dataclass(frozen=True)
class WireFormat:
    name: str
    prefix: str
    """Every route of the format is under this path (`/v1` for OpenAI's)."""
    routers: Sequence[WireRouter]
    handlers: Mapping[type[Exception], Handler]
    """How each kind of error is answered; `Exception` must be among them."""
    too_large: Callable[[PayloadTooLarge], Response]
    """The answer to a body over the size limit, before any route has seen it."""
    upgrade_store: Callable[[Store], None] | None = None
    """Moves what an older kernelgate stored in this format's shape into today's records, at start."""


def format_for(path: str, formats: Sequence[WireFormat]) -> WireFormat:
    """The format that owns a path: the longest prefix it is under, else the first format."""
    owners = [wire for wire in formats if path == wire.prefix or path.startswith(wire.prefix.rstrip("/") + "/")]
    return max(owners, key=lambda wire: len(wire.prefix)) if owners else formats[0]


def install_error_handlers(app: FastAPI, formats: Sequence[WireFormat]) -> None:
    for kind in {kind for wire in formats for kind in wire.handlers}:
        app.add_exception_handler(kind, _dispatch(formats))


def _dispatch(formats: Sequence[WireFormat]) -> Handler:
    async def handle(request: Request, exc: Exception) -> Response:
        wire = format_for(request.url.path, formats)
        handler = next(wire.handlers[base] for base in type(exc).__mro__ if base in wire.handlers)
        return await handler(request, exc)

    return handle
