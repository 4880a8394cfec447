"""Which model serves a request's `model` name: the built-in kernelgate/exec, or the upstream provider."""

from __future__ import annotations

import httpx2
import openai

from ._cassette import CassetteTransport
from ._errors import InvalidRequest
from ._exec_model import ExecModel
from ._model import Model
from ._settings import Provider, Settings
from ._upstream import ChatModel
from ._upstream_responses import ResponsesModel

__all__ = ["ModelRouter"]


class ModelRouter:
    """`kernelgate/exec`; `Provider/model` for a named provider; anything else for the default upstream."""

    def __init__(self, settings: Settings) -> None:
        self._exec = ExecModel()
        self._transport: CassetteTransport | None = None
        if settings.cassette is not None:
            self._transport = CassetteTransport(settings.cassette, settings.cassette_mode)
        self._clients: dict[str, tuple[Provider, openai.AsyncOpenAI]] = {
            name.lower(): (provider, self._client(provider, settings)) for name, provider in settings.providers.items()
        }
        default = settings.default_provider()
        if default is None and self._transport is not None and settings.cassette_mode == "replay":
            # A replayed cassette needs no server: this address is never connected to.
            default = Provider(base_url="http://cassette.invalid/v1", api=settings.upstream_api)
        self._default = (default, self._client(default, settings)) if default is not None else None

    def _client(self, provider: Provider, settings: Settings) -> openai.AsyncOpenAI:
        http_client = None
        if self._transport is not None:
            http_client = httpx2.AsyncClient(transport=self._transport, timeout=settings.upstream_timeout)
        return openai.AsyncOpenAI(
            base_url=provider.base_url,
            # Local servers (Ollama, vLLM) take any key; the SDK insists on one.
            api_key=provider.api_key or "unused",
            timeout=settings.upstream_timeout,
            max_retries=2,
            http_client=http_client,
        )

    def model(self, name: str) -> Model:
        if name == self._exec.name:
            return self._exec
        prefix, slash, rest = name.partition("/")
        if slash and prefix.lower() in self._clients:
            provider, client = self._clients[prefix.lower()]
            return _model_for(provider, name, rest, client)
        if self._default is None:
            msg = (
                f"The model {name!r} needs an upstream provider: set KERNELGATE_UPSTREAM_BASE_URL (and "
                "KERNELGATE_UPSTREAM_API_KEY if it wants one), name providers in KERNELGATE_PROVIDERS, or use "
                "the built-in model 'kernelgate/exec'."
            )
            raise InvalidRequest(msg, "model")
        provider, client = self._default
        return _model_for(provider, name, name, client)

    async def close(self) -> None:
        clients = [client for _, client in self._clients.values()]
        if self._default is not None:
            clients.append(self._default[1])
        for client in clients:
            await client.close()


def _model_for(provider: Provider, name: str, upstream_model: str, client: openai.AsyncOpenAI) -> Model:
    if provider.api == "responses":
        return ResponsesModel(name, upstream_model, client, vision=provider.vision)
    return ChatModel(name, upstream_model, client, stream=provider.stream, vision=provider.vision)
