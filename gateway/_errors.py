"""The gateway's own errors, by what the caller can do about them; no HTTP status lives here.

    GatewayError
    ├── InvalidRequest      a field the caller can fix (`param` names it; `code` may say more)
    ├── ContainerExpired    the container expired: make a new one
    ├── Unauthorized        a missing or wrong API key
    ├── NotFound            no such object (`kind`, `object_id`)
    ├── CursorNotFound      a listing's `after` names nothing in it
    ├── PayloadTooLarge     a body over the configured limit (`limit`)
    ├── Unavailable         sandboxes cannot be made now (Docker down, image missing)
    ├── SettingsError       a setting kernelgate cannot use (at start-up; the message names the variable)
    └── ModelError          the upstream model failed after its retries (`status` is the upstream's):
                            a response ends as failed, it is not an HTTP error (defined in _model.py)

One table maps this tree, and the sandbox library's, to HTTP statuses for every wire format
(`wire/status.py`); each format words the body its own way (OpenAI's: `wire/openai/_errors.py`).
"""

from __future__ import annotations

__all__ = [
    "ContainerExpired",
    "CursorNotFound",
    "GatewayError",
    "InvalidRequest",
    "NotFound",
    "PayloadTooLarge",
    "SettingsError",
    "Unauthorized",
    "Unavailable",
]


class GatewayError(Exception):
    param: str | None = None
    code: str | None = None


class InvalidRequest(GatewayError):
    def __init__(self, message: str, param: str | None = None, *, code: str | None = None) -> None:
        self.param = param
        self.code = code
        super().__init__(message)


class ContainerExpired(GatewayError):
    def __init__(self, container_id: str) -> None:
        self.container_id = container_id
        super().__init__("Container is expired.")


class Unauthorized(GatewayError):
    """A missing or wrong API key."""


class NotFound(GatewayError):
    def __init__(self, object_id: str, *, kind: str, param: str | None = None, message: str | None = None) -> None:
        self.kind = kind
        self.object_id = object_id
        self.param = param
        super().__init__(message or f"No such {kind} object: {object_id}")


class PayloadTooLarge(GatewayError):
    def __init__(self, limit: int, setting: str = "KERNELGATE_MAX_UPLOAD_BYTES") -> None:
        self.limit = limit
        super().__init__(f"The request body is larger than the {limit} bytes allowed: raise {setting} to allow more.")


class Unavailable(GatewayError):
    """Sandboxes cannot be made now; the message says what stands in the way."""


class CursorNotFound(GatewayError):
    """The `after` id of a listing names nothing in it."""


class SettingsError(GatewayError):
    """An environment variable holds a value kernelgate cannot use; the message names it."""
