"""OpenAI's wire format: routes, wire objects and error bodies."""

from __future__ import annotations

from ..format import WireFormat, WireRouter
from ._containers_api import router as containers_router
from ._conversations_api import router as conversations_router
from ._errors import HANDLERS, error_response
from ._files_api import router as files_router
from ._legacy import upgrade_store
from ._responses_api import router as responses_router

__all__ = ["OPENAI"]

OPENAI = WireFormat(
    name="openai",
    prefix="/v1",
    routers=[
        WireRouter(containers_router),
        WireRouter(responses_router),
        WireRouter(files_router, False),
        WireRouter(conversations_router, False),
    ],
    handlers=HANDLERS,
    too_large=lambda exc: error_response(413, str(exc)),
    upgrade_store=upgrade_store,
)
"""OpenAI's Responses (code_interpreter), Conversations, Containers, Container Files and Files APIs under /v1."""
