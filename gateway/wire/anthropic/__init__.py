"""Anthropic's wire format: the Messages API with the code execution tool, and the Files API."""

from __future__ import annotations

from ..format import WireFormat, WireRouter
from ._errors import HANDLERS, error_response
from ._routes import router

__all__ = ["ANTHROPIC"]

ANTHROPIC = WireFormat(
    name="anthropic",
    prefix="/anthropic",
    routers=[WireRouter(router)],
    handlers=HANDLERS,
    too_large=lambda exc: error_response(413, str(exc)),
)
"""POST /anthropic/v1/messages and /anthropic/v1/files."""
