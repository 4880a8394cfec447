"""Every failure as OpenAI's error body, `{"error": {"message", "type", "param", "code"}}`.

The status of our errors (the gateway's, the sandbox library's, the model's) comes from the one table
every wire format shares (`wire/status.py`); the handlers below also cover FastAPI's validation errors,
unknown routes and anything unexpected, so no response ever leaves in another shape.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from sandbox import SandboxError

from ..._errors import GatewayError
from ..format import Handler
from ..status import http_error
from ._responses_input import TAG

__all__ = ["HANDLERS", "error_response"]

log = logging.getLogger("kernelgate.gateway")

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


async def _known(request: Request, exc: Exception) -> JSONResponse:
    """The gateway's errors, the sandbox library's and the model's, by the one table in wire/status.py."""
    assert isinstance(exc, GatewayError | SandboxError)
    found = http_error(exc, request.method, request.url.path)
    return error_response(found.status, found.message, found.param, found.code, retry=found.retry)


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
    GatewayError: _known,
    SandboxError: _known,
    RequestValidationError: _validation_error,
    StarletteHTTPException: _http_error,
    Exception: _unexpected,
}
"""Every failure under /v1, answered in OpenAI's shape (the app dispatches to it by path)."""
