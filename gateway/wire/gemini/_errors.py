"""Every failure under /gemini in Google's shape: `{"error": {"code", "message", "status"}}`.

The status comes from the table every door shares (`wire/status.py`); `status` is Google's canonical
name for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi.responses import JSONResponse

from ..status import ErrorWording, HttpError

__all__ = ["HANDLERS", "error_response"]

_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "NOT_FOUND",
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


def _respond(error: HttpError) -> JSONResponse:
    return error_response(error.status, f"{error.message} (parameter: {error.param})" if error.param else error.message)


def _invalid(first: Mapping[str, Any]) -> HttpError:
    if first.get("type") == "json_invalid":
        return HttpError(400, "Invalid JSON payload received.")
    location = ".".join(str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path"))
    if first.get("type") == "extra_forbidden":
        return HttpError(400, f'Invalid JSON payload received. Unknown name "{location}": Cannot find field.')
    return HttpError(400, f"Invalid value at '{location}': {first.get('msg', 'invalid')}.")


HANDLERS = ErrorWording(
    respond=_respond,
    invalid=_invalid,
    no_route=lambda method, path, status: f"Method not found: {method} {path}.",
    unexpected="Internal error encountered.",
).handlers()
