"""What an error means over HTTP, for every wire format: its status, whether a retry may help, what to log.

Each wire format words the body its own way (OpenAI's `{"error": {"message", "type", "param", "code"}}`,
Google's `{"error": {"code", "message", "status"}}`, ...); the status and the retry advice are the same
whichever door the request came in by, so they are decided here, once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from sandbox import (
    CapacityExceeded,
    DataDirInUse,
    DiskFull,
    DockerUnavailable,
    FileNotFoundInSandbox,
    ImageNotFound,
    InvalidFilePath,
    ManagerClosed,
    MemoryLimitTooLarge,
    SandboxError,
    SandboxExpired,
    SandboxNotFound,
    SandboxStartError,
)

from .._errors import (
    ContainerExpired,
    CursorNotFound,
    GatewayError,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    Unavailable,
)
from ..conversation.model import ModelError
from .format import Handler

__all__ = ["ErrorWording", "HttpError", "http_error"]

log = logging.getLogger("kernelgate.gateway")

# The gateway's errors -> (status, code when the error names none).
_GATEWAY_STATUS: dict[type[GatewayError], tuple[int, str | None]] = {
    InvalidRequest: (400, None),
    ContainerExpired: (400, None),
    CursorNotFound: (400, None),
    Unauthorized: (401, "invalid_api_key"),
    NotFound: (404, None),
    PayloadTooLarge: (413, None),
    Unavailable: (503, None),
}

# Sandbox errors -> (status, param).
_SANDBOX_STATUS: dict[type[SandboxError], tuple[int, str | None]] = {
    InvalidFilePath: (400, "file"),
    MemoryLimitTooLarge: (400, "memory_limit"),
    DiskFull: (413, "file"),
    CapacityExceeded: (429, None),
    SandboxExpired: (400, None),
    SandboxNotFound: (404, None),
    FileNotFoundInSandbox: (404, "file_id"),
    DockerUnavailable: (503, None),
    ImageNotFound: (503, None),
    ManagerClosed: (503, None),
    DataDirInUse: (503, None),
    SandboxStartError: (500, None),
}
# Docker or the image missing: retrying within seconds will not help.
_NO_RETRY = (DockerUnavailable, ImageNotFound, DataDirInUse, Unavailable)


@dataclass(frozen=True)
class HttpError:
    status: int
    message: str
    param: str | None = None
    code: str | None = None
    retry: bool = True
    """Whether asking again may help (a 5xx that will not gets `x-should-retry: false` where the SDK reads it)."""


def http_error(exc: GatewayError | SandboxError, method: str = "", path: str = "") -> HttpError:
    """The error as HTTP sees it; server-side failures are logged here, once."""
    if isinstance(exc, ModelError):
        # The model's provider failed before the response said anything.
        log.warning("Upstream failure on %s %s: %s", method, path, exc)
        if exc.code:  # kernelgate's own (cassette_miss): the same request fails the same way
            return HttpError(502, str(exc), code=exc.code, retry=False)
        status = exc.status or 502
        if status == 429 or status >= 500:
            return HttpError(status, str(exc))
        return HttpError(502, str(exc), retry=False)  # the upstream refused kernelgate's request
    if isinstance(exc, GatewayError):
        status, code = next((found for kind, found in _GATEWAY_STATUS.items() if isinstance(exc, kind)), (500, None))
        if status >= 500 and not isinstance(exc, Unavailable):
            log.error("Gateway failure on %s %s: %s", method, path, exc)
        return HttpError(status, str(exc), exc.param, exc.code or code, retry=not isinstance(exc, _NO_RETRY))
    status, param = next((found for kind, found in _SANDBOX_STATUS.items() if isinstance(exc, kind)), (500, None))
    if status >= 500:
        log.error("Sandbox failure on %s %s: %s", method, path, exc)
    message = "Container is expired." if isinstance(exc, SandboxExpired) else str(exc)
    return HttpError(status, message, param, retry=not isinstance(exc, _NO_RETRY))


@dataclass(frozen=True)
class ErrorWording:
    """How one door words its errors; `handlers()` turns it into the app's handlers for that door."""

    respond: Callable[[HttpError], Response]
    """The error body, and its headers, for a status and message."""
    invalid: Callable[[Mapping[str, Any]], HttpError]
    """A request the validation refused (pydantic's first error), as a 400 in the door's words."""
    no_route: Callable[[str, str, int], str]
    """The message for an unknown path (404) or method (405): (method, path, status)."""
    unexpected: str
    """The message of a 500 nobody foresaw (it is logged with its traceback)."""

    def handlers(self) -> dict[type[Exception], Handler]:
        async def known(request: Request, exc: Exception) -> Response:
            assert isinstance(exc, GatewayError | SandboxError)
            return self.respond(http_error(exc, request.method, request.url.path))

        async def invalid(request: Request, exc: Exception) -> Response:
            assert isinstance(exc, RequestValidationError)
            return self.respond(self.invalid(exc.errors()[0] if exc.errors() else {}))

        async def http(request: Request, exc: Exception) -> Response:
            assert isinstance(exc, StarletteHTTPException)
            status = exc.status_code
            unrouted = status == 405 or (status == 404 and exc.detail == "Not Found")
            message = self.no_route(request.method, request.url.path, status) if unrouted else str(exc.detail)
            return self.respond(HttpError(status, message))

        async def unexpected(request: Request, exc: Exception) -> Response:
            log.exception("Unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
            return self.respond(HttpError(500, self.unexpected))

        return {
            GatewayError: known,
            SandboxError: known,
            RequestValidationError: invalid,
            StarletteHTTPException: http,
            Exception: unexpected,
        }
