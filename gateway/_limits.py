"""Request guards that run before any route: the API key, and the upload size limit."""

from __future__ import annotations

import hmac
import re
from collections.abc import Awaitable, Callable

from fastapi import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._errors import PayloadTooLarge, Unauthorized

__all__ = ["BodyLimit", "api_key_check"]

# The routes that take uploads: the Files API and a container's files.
_UPLOAD_ROUTE = re.compile(r"/v1/files|/v1/containers/[^/]+/files")
# Room for multipart boundaries and the other form fields around a file of the largest allowed size.
_ENVELOPE = 64 * 1024


class BodyLimit:
    """Refuse bodies over the limit: at once by Content-Length, or as soon as a chunked body passes it.

    Uploads (multipart) may be as large as the upload limit: the multipart parser spools them to disk,
    so this is what keeps a huge one from filling it. Every other body is parsed in memory, so it has
    its own, much smaller limit.
    """

    def __init__(
        self,
        app: ASGIApp,
        upload_bytes: int,
        json_bytes: int,
        render: Callable[[PayloadTooLarge, str], Response],
    ) -> None:
        self._app = app
        self._upload = PayloadTooLarge(upload_bytes, "KERNELGATE_MAX_UPLOAD_BYTES")
        self._json = PayloadTooLarge(json_bytes, "KERNELGATE_MAX_JSON_BYTES")
        self._render = render

    def _limit(self, path: str, headers: dict[bytes, bytes]) -> tuple[PayloadTooLarge, int]:
        """The error for this request's kind of body, and the bytes it may have."""
        multipart = headers.get(b"content-type", b"").startswith(b"multipart/form-data")
        if multipart and _UPLOAD_ROUTE.fullmatch(path):
            return self._upload, self._upload.limit + _ENVELOPE
        return self._json, self._json.limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        error, allowed = self._limit(scope["path"], headers)
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > allowed:
            await self._render(error, scope["path"])(scope, receive, send)
            return
        received = 0
        exceeded = False

        async def counting() -> Message:
            nonlocal received, exceeded
            message = await receive()
            received += len(message.get("body", b""))
            if received > allowed:
                exceeded = True
                raise error
            return message

        async def sending(message: Message) -> None:
            # Whatever the app made of the aborted body (FastAPI turns it into a 400), answer 413.
            if not exceeded:
                await send(message)
            elif message["type"] == "http.response.start":
                await self._render(error, scope["path"])(scope, receive, send)

        await self._app(scope, counting, sending)


def _key_of(request: Request) -> str:
    """The key as each door's SDK sends it: a bearer token (OpenAI), x-api-key (Anthropic), x-goog-api-key
    or ?key= (Gemini)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token:
        return token
    return (
        request.headers.get("x-api-key") or request.headers.get("x-goog-api-key") or request.query_params.get("key", "")
    )


def api_key_check(expected: str | None) -> Callable[[Request], Awaitable[None]]:
    """A route dependency that enforces the key when one is configured."""

    async def check(request: Request) -> None:
        if expected is None:
            return
        given = _key_of(request)
        if not given:
            msg = (
                "You didn't provide an API key. Send the key the gateway has in KERNELGATE_API_KEY as your SDK "
                "sends one: 'Authorization: Bearer <key>', 'x-api-key' (Anthropic) or 'x-goog-api-key' (Gemini)."
            )
            raise Unauthorized(msg)
        if not hmac.compare_digest(given.encode(), expected.encode()):
            msg = "Incorrect API key provided."
            raise Unauthorized(msg)

    return check
