"""OpenAI's wire format: routes, wire objects and error bodies."""

from __future__ import annotations

from ._containers_api import router as containers_router
from ._errors import error_response, install_error_handlers
from ._files_api import router as files_router
from ._responses_api import router as responses_router

__all__ = [
    "containers_router",
    "error_response",
    "files_router",
    "install_error_handlers",
    "responses_router",
]
