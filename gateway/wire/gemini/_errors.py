"""Every failure under /gemini in Google's shape: `{"error": {"code", "message", "status"}}`.

The status comes from the table every door shares (`wire/status.py`); `status` is Google's canonical
name for it.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from sandbox import SandboxError

from ..._errors import GatewayError
from ..format import Handler
from ..status import http_error

__all__ = ["HANDLERS", "error_response"]

log = logging.getLogger("kernelgate.gateway")

_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def error_response(status: int, message: str) -> JSONResponse:
    body = {"error": {"code": status, "message": message, "status": _STATUS.get(status, "UNKNOWN")}}
    return JSONResponse(body, status_code=status)


async def _known(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GatewayError | SandboxError)
    found = http_error(exc, request.method, request.url.path)
    message = f"{found.message} (parameter: {found.param})" if found.param else found.message
    return error_response(found.status, message)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first: dict[str, Any] = exc.errors()[0] if exc.errors() else {}
    if first.get("type") == "json_invalid":
        return error_response(400, "Invalid JSON payload received.")
    location = ".".join(str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path"))
    if first.get("type") == "extra_forbidden":
        return error_response(400, f'Invalid JSON payload received. Unknown name "{location}": Cannot find field.')
    return error_response(400, f"Invalid value at '{location}': {first.get('msg', 'invalid')}.")


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return error_response(404, f"Method not found: {request.method} {request.url.path}.")
    return error_response(exc.status_code, str(exc.detail))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("Unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "Internal error encountered.")


HANDLERS: dict[type[Exception], Handler] = {
    GatewayError: _known,
    SandboxError: _known,
    RequestValidationError: _validation_error,
    StarletteHTTPException: _http_error,
    Exception: _unexpected,
}
