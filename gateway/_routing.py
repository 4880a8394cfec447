"""Which model serves a request's `model` name: the built-in kernelgate/exec, or an upstream provider.

Each provider's client is made on its first use: the Anthropic and Gemini SDKs take a second or two to
import, which a gateway that never asks them should not pay at start-up, and which is paid in a thread,
so that other requests go on meanwhile.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import httpx2
import openai

from ._cassette import CassetteTransport
from ._errors import InvalidRequest
from ._exec_model import ExecModel
from ._model import Model
from ._settings import Provider, Settings
from ._upstream_chat import ChatModel
from ._upstream_responses import ResponsesModel

__all__ = ["ModelRouter", "Upstream"]


class Upstream(Protocol):
    """One provider's client, shared by the models it serves."""

    def __init__(self, provider: Provider, timeout: float, http_client: httpx2.AsyncClient | None) -> None: ...

    def model(self, name: str, upstream_model: str) -> Model: ...

    async def aclose(self) -> None: ...


class ModelRouter:
    """`kernelgate/exec`; `Provider/model` for a named provider; anything else for the default upstream."""

    def __init__(self, settings: Settings) -> None:
        self._exec = ExecModel()
        self._timeout = settings.upstream_timeout
        self._transport: CassetteTransport | None = None
        if settings.cassette is not None:
            self._transport = CassetteTransport(settings.cassette, settings.cassette_mode)
        self._replaying = self._transport is not None and settings.cassette_mode == "replay"
        self._providers = settings.all_providers()
        self._default = settings.default_provider()
        if self._default is None and self._replaying:
            # A replayed cassette needs no server: this address is never connected to.
            self._default = Provider(base_url="http://cassette.invalid/v1", api=settings.upstream_api)
        self._upstreams: dict[str, Upstream] = {}

    async def model(self, name: str) -> Model:
        if name == self._exec.name:
            return self._exec
        prefix, slash, rest = name.partition("/")
        if slash and prefix.lower() in self._providers:
            return await self._model_of(prefix.lower(), name, rest)
        if self._default is None:
            msg = (
                f"The model {name!r} needs an upstream provider: set KERNELGATE_UPSTREAM_BASE_URL (and "
                "KERNELGATE_UPSTREAM_API_KEY if it wants one), name providers in KERNELGATE_PROVIDERS, prefix "
                "the name with Anthropic/ or Gemini/, or use the built-in model 'kernelgate/exec'."
            )
            raise InvalidRequest(msg, "model")
        return await self._model_of("", name, name)

    async def _model_of(self, key: str, name: str, upstream_model: str) -> Model:
        provider = self._providers[key] if key else self._default
        assert provider is not None
        if provider.api_key is None and provider.api_key_env is not None and not self._replaying:
            msg = (
                f"The model {name!r} goes to {provider.base_url} ({provider.api} API), which needs an API key: "
                f"set {provider.api_key_env}."
            )
            raise InvalidRequest(msg, "model")
        if key not in self._upstreams:
            kind = await asyncio.to_thread(_upstream_class, provider)
            if key not in self._upstreams:  # another request may have connected meanwhile
                self._upstreams[key] = kind(provider, self._timeout, self._http_client())
        return self._upstreams[key].model(name, upstream_model)

    def _http_client(self) -> httpx2.AsyncClient | None:
        if self._transport is None:
            return None  # each SDK makes its own
        return httpx2.AsyncClient(transport=self._transport, timeout=self._timeout)

    async def close(self) -> None:
        for upstream in self._upstreams.values():
            await upstream.aclose()
        self._upstreams.clear()


def _upstream_class(provider: Provider) -> type[Upstream]:
    """The client class for the provider's API, its module imported on first use."""
    if provider.api == "anthropic":
        from ._upstream_anthropic import AnthropicUpstream

        return AnthropicUpstream
    if provider.api == "gemini":
        from ._upstream_gemini import GeminiUpstream

        return GeminiUpstream
    return _OpenAIUpstream


class _OpenAIUpstream:
    """Chat Completions or Responses, through the openai SDK (streaming, timeouts, retries with backoff)."""

    def __init__(self, provider: Provider, timeout: float, http_client: httpx2.AsyncClient | None) -> None:
        self._provider = provider
        self._client = openai.AsyncOpenAI(
            base_url=provider.base_url,
            # Local servers (Ollama, vLLM) take any key; the SDK insists on one.
            api_key=provider.api_key or "unused",
            timeout=timeout,
            max_retries=2,
            http_client=http_client,
        )

    def model(self, name: str, upstream_model: str) -> Model:
        vision = self._provider.takes_images
        if self._provider.api == "responses":
            return ResponsesModel(name, upstream_model, self._client, stream=self._provider.stream, vision=vision)
        return ChatModel(name, upstream_model, self._client, stream=self._provider.stream, vision=vision)

    async def aclose(self) -> None:
        await self._client.close()
