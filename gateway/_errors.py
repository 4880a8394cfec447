"""The gateway's own errors, raised by its services and rendered by each wire format's error table.

    GatewayError
    ├── InvalidRequest      400: a field the caller can fix (`param` names it)
    ├── ContainerExpired    400: "Container is expired."
    ├── Unauthorized        401: a missing or wrong API key
    ├── NotFound            404: no such object (`kind`, `object_id`)
    ├── PayloadTooLarge     413: an upload over the configured limit
    └── Unavailable         503: sandboxes cannot be made now (Docker down, image missing)

Errors of the sandbox library are mapped onto the same statuses in `openai/_errors.py`.
"""

from __future__ import annotations

__all__ = [
    "ContainerExpired",
    "GatewayError",
    "InvalidRequest",
    "NotFound",
    "PayloadTooLarge",
    "Unauthorized",
    "Unavailable",
]


class GatewayError(Exception):
    status = 500
    param: str | None = None
    code: str | None = None


class InvalidRequest(GatewayError):
    status = 400

    def __init__(self, message: str, param: str | None = None, *, code: str | None = None) -> None:
        self.param = param
        self.code = code
        super().__init__(message)


class ContainerExpired(GatewayError):
    status = 400

    def __init__(self, container_id: str) -> None:
        self.container_id = container_id
        super().__init__("Container is expired.")


class Unauthorized(GatewayError):
    status = 401
    code = "invalid_api_key"


class NotFound(GatewayError):
    status = 404

    def __init__(self, object_id: str, *, kind: str, param: str | None = None) -> None:
        self.kind = kind
        self.object_id = object_id
        self.param = param
        super().__init__(f"No such {kind} object: {object_id}")


class PayloadTooLarge(GatewayError):
    status = 413

    def __init__(self, limit: int, setting: str = "KERNELGATE_MAX_UPLOAD_BYTES") -> None:
        self.limit = limit
        super().__init__(f"The request body is larger than the {limit} bytes allowed: raise {setting} to allow more.")


class Unavailable(GatewayError):
    status = 503
