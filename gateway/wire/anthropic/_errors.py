"""Every failure under /anthropic in Anthropic's shape: `{"type": "error", "error": {"type", "message"}}`.

The status comes from the table every door shares (`wire/status.py`); the error `type` is Anthropic's
name for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi.responses import JSONResponse

from ..._ids import new_hex_id
from ..status import ErrorWording, HttpError

__all__ = ["HANDLERS", "error_response", "error_type"]

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def error_type(status: int) -> str:
    return _TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def error_response(status: int, message: str, *, retry: bool = True) -> JSONResponse:
    error = {"type": error_type(status), "message": message}
    body = {"type": "error", "error": error, "request_id": new_hex_id("req_", 24)}
    headers = {} if retry or status < 500 else {"x-should-retry": "false"}
    return JSONResponse(body, status_code=status, headers=headers)


def _invalid(first: Mapping[str, Any]) -> HttpError:
    if first.get("type") == "json_invalid":
        return HttpError(400, "There was an error parsing the body of your request: it is not valid JSON.")
    parts = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
    location = ".".join(part for part in parts if not part.startswith("~"))
    if first.get("type") == "extra_forbidden":
        return HttpError(400, f"{location}: Extra inputs are not permitted")
    if first.get("type") == "missing":
        return HttpError(400, f"{location}: Field required")
    return HttpError(400, f"{location}: {first.get('msg', 'invalid value')}")


HANDLERS = ErrorWording(
    respond=lambda error: error_response(error.status, error.message, retry=error.retry),
    invalid=_invalid,
    no_route=lambda method, path, status: f"Not found: {method} {path}",
    unexpected="Internal server error",
).handlers()
