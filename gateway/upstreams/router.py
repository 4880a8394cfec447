"""Which model serves a request's `model` name: the built-in kernelgate/exec, or an upstream provider.

Each provider's client is made on its first use: the Anthropic and Gemini SDKs take a second or two to
import, which a gateway that never asks them should not pay at start-up, and which is paid in a thread,
so that other requests go on meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import httpx2

from .._errors import InvalidRequest
from .._metrics import Metrics
from ..conversation.model import Model, ModelError, ModelEvent, Turn, Usage
from .cassette import CassetteTransport
from .exec_model import ExecModel
from .providers import Provider
from .registry import Upstream, upstream_class

__all__ = ["Cassette", "ModelRouter"]


@dataclass(frozen=True)
class Cassette:
    """A file of recorded upstream exchanges, and whether to record to it or replay from it."""

    path: Path
    mode: Literal["record", "replay"] = "replay"


class ModelRouter:
    """`kernelgate/exec`; `Provider/model` for a named provider; anything else for the default upstream."""

    def __init__(
        self,
        providers: Mapping[str, Provider],
        default: Provider | None,
        *,
        timeout: float,
        cassette: Cassette | None = None,
        default_api: str = "chat",
        metrics: Metrics | None = None,
    ) -> None:
        """`providers` by lower-cased name; `default` serves names without a known prefix."""
        self._metrics = metrics or Metrics()
        self._exec = ExecModel()
        self._timeout = timeout
        self._transport = CassetteTransport(cassette.path, cassette.mode) if cassette is not None else None
        self._replaying = cassette is not None and cassette.mode == "replay"
        self._providers = {name.lower(): provider for name, provider in providers.items()}
        self._display = {name.lower(): name for name in providers}
        self._default = default
        if self._default is None and self._replaying:
            # A replayed cassette needs no server: this address is never connected to.
            self._default = Provider(base_url="http://cassette.invalid/v1", api=default_api)
        self._upstreams: dict[str, Upstream] = {}

    def default_upstream(self) -> str | None:
        """Where names without a known prefix go (`<base URL> (<api> API)`), or None when nowhere."""
        return f"{self._default.base_url} ({self._default.api} API)" if self._default is not None else None

    def names(self) -> list[str]:
        """What a client may name: kernelgate/exec, and `Name/` for each named provider with its key (a
        prefix: the provider's own model names follow it)."""
        ready = [
            name
            for name, provider in self._providers.items()
            if provider.api_key is not None or provider.api_key_env is None
        ]
        return [self._exec.name, *(f"{self._display.get(name, name)}/" for name in sorted(ready))]

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
        return _Metered(self._upstreams[key].model(name, upstream_model), key or "default", provider.api, self._metrics)

    def _http_client(self) -> httpx2.AsyncClient | None:
        if self._transport is None:
            return None  # each SDK makes its own
        return httpx2.AsyncClient(transport=self._transport, timeout=self._timeout)

    async def close(self) -> None:
        for upstream in self._upstreams.values():
            await upstream.aclose()
        self._upstreams.clear()


class _Metered:
    """A provider's model, counted in the metrics: each turn asked of it, by outcome, and its tokens."""

    def __init__(self, model: Model, provider: str, api: str, metrics: Metrics) -> None:
        self.name = model.name
        self._model = model
        self._labels = (provider, api)
        self._metrics = metrics

    async def respond(self, turn: Turn) -> AsyncIterator[ModelEvent]:
        provider, api = self._labels
        outcome = "error"
        try:
            async for event in self._model.respond(turn):
                if isinstance(event, Usage):
                    self._metrics.upstream_tokens.labels(provider, "input").inc(event.input_tokens)
                    self._metrics.upstream_tokens.labels(provider, "output").inc(event.output_tokens)
                yield event
            outcome = "ok"
        except ModelError as exc:
            outcome = f"http_{exc.status}" if exc.status else exc.code or "error"
            raise
        except (GeneratorExit, asyncio.CancelledError):
            outcome = "cancelled"  # the caller stopped reading: a limit, or the client went away
            raise
        finally:
            self._metrics.upstream_requests.labels(provider, api, outcome).inc()
