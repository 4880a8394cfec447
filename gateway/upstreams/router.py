"""Which model serves a request's `model` name: the built-in kernelgate/exec, or an upstream provider.

Each provider's client is made on its first use: the Anthropic and Gemini SDKs take a second or two to
import, which a gateway that never asks them should not pay at start-up, and which is paid in a thread,
so that other requests go on meanwhile.
"""

from __future__ import annotations

import asyncio

import httpx2

from .._errors import InvalidRequest
from .._model import Model
from .._settings import Settings
from .cassette import CassetteTransport
from .exec_model import ExecModel
from .providers import Provider
from .registry import Upstream, upstream_class

__all__ = ["ModelRouter"]


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
            kind = await asyncio.to_thread(upstream_class, provider.api)
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
