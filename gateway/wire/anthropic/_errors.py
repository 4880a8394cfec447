"""Every failure under /anthropic in Anthropic's shape: `{"type": "error", "error": {"type", "message"}}`.

The status comes from the table every door shares (`wire/status.py`); the error `type` is Anthropic's
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
from ..._ids import new_hex_id
from ..format import Handler
from ..status import http_error

__all__ = ["HANDLERS", "error_response"]

log = logging.getLogger("kernelgate.gateway")

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def error_type(status: int) -> str:
    return _TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def error_response(status: int, message: str, *, retry: bool = True) -> JSONResponse:
    body = {
        "type": "error",
        "error": {"type": error_type(status), "message": message},
        "request_id": new_hex_id("req_", 24),
    }
    headers = {} if retry or status < 500 else {"x-should-retry": "false"}
    return JSONResponse(body, status_code=status, headers=headers)


async def _known(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GatewayError | SandboxError)
    found = http_error(exc, request.method, request.url.path)
    return error_response(found.status, found.message, retry=found.retry)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first: dict[str, Any] = exc.errors()[0] if exc.errors() else {}
    if first.get("type") == "json_invalid":
        return error_response(400, "There was an error parsing the body of your request: it is not valid JSON.")
    location = ".".join(
        str(part)
        for part in first.get("loc", ())
        if part not in ("body", "query", "path") and not str(part).startswith("~")
    )
    if first.get("type") == "extra_forbidden":
        return error_response(400, f"{location}: Extra inputs are not permitted")
    if first.get("type") == "missing":
        return error_response(400, f"{location}: Field required")
    return error_response(400, f"{location}: {first.get('msg', 'invalid value')}")


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return error_response(404, f"Not found: {request.method} {request.url.path}")
    return error_response(exc.status_code, str(exc.detail))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("Unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "Internal server error")


HANDLERS: dict[type[Exception], Handler] = {
    GatewayError: _known,
    SandboxError: _known,
    RequestValidationError: _validation_error,
    StarletteHTTPException: _http_error,
    Exception: _unexpected,
}
