"""Every failure as OpenAI's error body, `{"error": {"message", "type", "param", "code"}}`.

The status of our errors (the gateway's, the sandbox library's, the model's) comes from the one table
every wire format shares (`wire/status.py`), which also covers FastAPI's validation errors, unknown
routes and anything unexpected, so no response ever leaves in another shape; here is only the wording.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi.responses import JSONResponse

from ..status import ErrorWording, HttpError
from ._responses_input import TAG

__all__ = ["HANDLERS", "error_response"]

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


def _invalid(first: Mapping[str, Any]) -> HttpError:
    if first.get("type") == "json_invalid":
        message = (
            "We could not parse the JSON body of your request. The body must be valid JSON; "
            f"{first.get('ctx', {}).get('error', 'it is not')}."
        )
        return HttpError(400, message)
    param = _param(first.get("loc", ()))
    kind = first.get("type")
    if kind == "missing":
        return HttpError(400, f"Missing required parameter: '{param}'.", param, "missing_required_parameter")
    if kind == "extra_forbidden":
        return HttpError(400, f"Unknown parameter: '{param}'.", param, "unknown_parameter")
    if kind == "union_tag_invalid":
        found = first.get("ctx", {}).get("tag", "").removeprefix(TAG)
        return HttpError(400, f"Invalid value: '{found}'. Supported values are: {_tags(first)}.", param)
    return HttpError(400, f"Invalid value for '{param}': {first.get('msg', 'invalid')}.", param)


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


def _no_route(method: str, path: str, status: int) -> str:
    return f"Invalid method for URL ({method} {path})" if status == 405 else f"Invalid URL ({method} {path})"


HANDLERS = ErrorWording(
    respond=lambda e: error_response(e.status, e.message, e.param, e.code, retry=e.retry),
    invalid=_invalid,
    no_route=_no_route,
    unexpected="The server had an error while processing your request.",
).handlers()
"""Every failure under /v1, answered in OpenAI's shape (the app dispatches to it by path)."""
