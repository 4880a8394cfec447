"""Every failure as OpenAI's error body, `{"error": {"message", "type", "param", "code"}}`.

Two tables map our errors (the gateway's and the sandbox library's) to a status; the handlers below
also cover FastAPI's validation errors, unknown routes and anything unexpected, so no response ever
leaves in another shape.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

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

from ..._errors import (
    ContainerExpired,
    CursorNotFound,
    GatewayError,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    Unavailable,
)
from ...conversation.model import ModelError
from ..format import Handler
from ._responses_input import TAG

__all__ = ["HANDLERS", "error_response"]

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

# Sandbox errors -> (status, param). Errors the SDK should not retry get x-should-retry: false.
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
_NO_RETRY = (DockerUnavailable, ImageNotFound, DataDirInUse)


# Seconds a client should wait before asking again for a sandbox (as OpenAI's 429s say).
_RETRY_AFTER = "5"


def error_response(
    status: int, message: str, param: str | None = None, code: str | None = None, *, retry: bool = True
) -> JSONResponse:
    kind = "server_error" if status >= 500 else "invalid_request_error"
    headers = {} if retry or status < 500 else {"x-should-retry": "false"}
    if status == 429:  # OpenAI's shape for limits: type "requests", code "rate_limit_exceeded"
        kind, code = "requests", code or "rate_limit_exceeded"
        headers["retry-after"] = _RETRY_AFTER
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


async def _gateway_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GatewayError)
    status, code = next((found for kind, found in _GATEWAY_STATUS.items() if isinstance(exc, kind)), (500, None))
    if status >= 500 and not isinstance(exc, Unavailable):
        log.error("Gateway failure on %s %s: %s", request.method, request.url.path, exc)
    # Unavailable means Docker or the image is missing: retrying within seconds will not help.
    return error_response(status, str(exc), exc.param, exc.code or code, retry=not isinstance(exc, Unavailable))


async def _model_error(request: Request, exc: Exception) -> JSONResponse:
    """The model's provider failed before the response said anything: an HTTP error the client can retry
    where retrying may help (the upstream's 429 and 5xx, an upstream out of reach)."""
    assert isinstance(exc, ModelError)
    log.warning("Upstream failure on %s %s: %s", request.method, request.url.path, exc)
    if exc.code:  # kernelgate's own (cassette_miss): the same request fails the same way
        return error_response(502, str(exc), code=exc.code, retry=False)
    status = exc.status or 502
    if status == 429 or status >= 500:
        return error_response(status, str(exc))
    return error_response(502, str(exc), retry=False)  # the upstream refused kernelgate's request


async def _sandbox_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SandboxError)
    status, param = next((found for kind, found in _SANDBOX_STATUS.items() if isinstance(exc, kind)), (500, None))
    message = "Container is expired." if isinstance(exc, SandboxExpired) else str(exc)
    if status >= 500:
        log.error("Sandbox failure on %s %s: %s", request.method, request.url.path, exc)
    return error_response(status, message, param, retry=not isinstance(exc, _NO_RETRY))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first: dict[str, Any] = exc.errors()[0] if exc.errors() else {}
    if first.get("type") == "json_invalid":
        message = (
            "We could not parse the JSON body of your request. The body must be valid JSON; "
            f"{first.get('ctx', {}).get('error', 'it is not')}."
        )
        return error_response(400, message)
    param = _param(first.get("loc", ()))
    kind = first.get("type")
    if kind == "missing":
        return error_response(400, f"Missing required parameter: '{param}'.", param, "missing_required_parameter")
    if kind == "extra_forbidden":
        return error_response(400, f"Unknown parameter: '{param}'.", param, "unknown_parameter")
    if kind == "union_tag_invalid":
        found = first.get("ctx", {}).get("tag", "").removeprefix(TAG)
        return error_response(400, f"Invalid value: '{found}'. Supported values are: {_tags(first)}.", param)
    return error_response(400, f"Invalid value for '{param}': {first.get('msg', 'invalid')}.", param)


def _param(location: Sequence[Any]) -> str | None:
    """A validation error's location as OpenAI names a parameter: `input[0].content[1].type`."""
    param = ""
    for part in location:
        if isinstance(part, int):
            param += f"[{part}]"
        elif (part in ("body", "query", "path", "header") and not param) or str(part).startswith(TAG):
            continue
        else:
            param += f".{part}" if param else str(part)
    return param or None


def _tags(error: Mapping[str, Any]) -> str:
    expected = str(error.get("ctx", {}).get("expected_tags", ""))
    return ", ".join(f"'{tag.strip().strip(chr(39)).removeprefix(TAG)}'" for tag in expected.split(",") if tag.strip())


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404 and exc.detail == "Not Found":
        message = f"Invalid URL ({request.method} {request.url.path})"
    elif exc.status_code == 405:
        message = f"Invalid method for URL ({request.method} {request.url.path})"
    else:
        message = str(exc.detail)
    return error_response(exc.status_code, message)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("Unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "The server had an error while processing your request.")


HANDLERS: dict[type[Exception], Handler] = {
    ModelError: _model_error,
    GatewayError: _gateway_error,
    SandboxError: _sandbox_error,
    RequestValidationError: _validation_error,
    StarletteHTTPException: _http_error,
    Exception: _unexpected,
}
"""Every failure under /v1, answered in OpenAI's shape (the app dispatches to it by path)."""
