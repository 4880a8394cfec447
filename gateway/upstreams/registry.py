"""The upstream APIs kernelgate speaks, one line each: where its client lives, and its built-in provider.

A client module is imported on first use (the Anthropic and Gemini SDKs take a second or two to import,
which a gateway that never asks them should not pay at start-up). Adding a provider API is one module
in this package that defines an `Upstream`, and one line here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Protocol

import httpx2
from pydantic import AfterValidator

if TYPE_CHECKING:
    from ..conversation.model import Model
    from .providers import Provider

__all__ = ["REGISTRY", "ApiName", "Entry", "Upstream", "upstream_class"]


class Upstream(Protocol):
    """One provider's client, shared by the models it serves."""

    def __init__(self, provider: Provider, timeout: float, http_client: httpx2.AsyncClient | None) -> None: ...

    def model(self, name: str, upstream_model: str) -> Model: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class Entry:
    client: str
    """The Upstream class, as `module:Class` within this package."""
    builtin: str | None = None
    """The provider of this name that needs no providers file (`Anthropic/...`), or None."""
    default_base_url: str = ""
    """Where the built-in provider and a providers-file table without `base_url` send requests."""
    key_variables: tuple[str, ...] = ()
    """The built-in provider's key variables, as its own SDK reads them: the last one set wins."""
    base_url_variable: str | None = None


REGISTRY: dict[str, Entry] = {
    "chat": Entry(".openai.chat:ChatUpstream"),
    "responses": Entry(
        ".openai.responses:ResponsesUpstream",
        builtin="OpenAI",  # HasteKit's names (`OpenAI/gpt-4.1-mini`), over OpenAI's own API
        default_base_url="https://api.openai.com/v1",
        key_variables=("OPENAI_API_KEY",),
        base_url_variable="OPENAI_BASE_URL",
    ),
    "anthropic": Entry(
        ".anthropic:AnthropicUpstream",
        builtin="Anthropic",
        default_base_url="https://api.anthropic.com",
        key_variables=("ANTHROPIC_API_KEY",),
        base_url_variable="ANTHROPIC_BASE_URL",
    ),
    "gemini": Entry(
        ".gemini:GeminiUpstream",
        builtin="Gemini",
        default_base_url="https://generativelanguage.googleapis.com",
        key_variables=("GEMINI_API_KEY", "GOOGLE_API_KEY"),  # GOOGLE_API_KEY wins, as in google-genai
        base_url_variable="GOOGLE_GEMINI_BASE_URL",
    ),
}


def _registered(api: str) -> str:
    if api not in REGISTRY:
        msg = f"api must be one of {', '.join(map(repr, REGISTRY))}, not {api!r}"
        raise ValueError(msg)
    return api


ApiName = Annotated[str, AfterValidator(_registered)]
"""A field naming an upstream API: one with a line in REGISTRY."""


def upstream_class(api: str) -> type[Upstream]:
    """The client class of an API, its module imported now (slow for some SDKs: call it in a thread)."""
    module, _, name = REGISTRY[api].client.partition(":")
    found: type[Upstream] = getattr(importlib.import_module(module, __package__), name)
    return found
