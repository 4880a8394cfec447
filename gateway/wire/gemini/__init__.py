"""Gemini's wire format: generateContent with the codeExecution tool, answered in Google's shapes."""

from __future__ import annotations

from ..format import WireFormat, WireRouter
from ._errors import HANDLERS, error_response
from ._routes import router

__all__ = ["GEMINI"]

GEMINI = WireFormat(
    name="gemini",
    prefix="/gemini",
    routers=[WireRouter(router)],
    handlers=HANDLERS,
    too_large=lambda exc: error_response(413, str(exc)),
)
"""generateContent and streamGenerateContent under /gemini/{v1,v1beta}/models/{model}:{method}."""
