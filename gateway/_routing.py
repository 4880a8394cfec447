"""Which model serves a request's `model` name: the built-in kernelgate/exec, or the upstream provider."""

from __future__ import annotations

import httpx2
import openai

from ._cassette import CassetteTransport
from ._errors import InvalidRequest
from ._exec_model import ExecModel
from ._model import Model
from ._settings import Settings
from ._upstream import ChatModel

__all__ = ["ModelRouter"]


class ModelRouter:
    def __init__(self, settings: Settings) -> None:
        self._exec = ExecModel()
        self._client: openai.AsyncOpenAI | None = None
        replaying = settings.cassette is not None and settings.cassette_mode == "replay"
        if settings.upstream_base_url or replaying:
            http_client = None
            if settings.cassette is not None:
                transport = CassetteTransport(settings.cassette, settings.cassette_mode)
                http_client = httpx2.AsyncClient(transport=transport, timeout=settings.upstream_timeout)
            self._client = openai.AsyncOpenAI(
                # A replayed cassette needs no server: this address is never connected to.
                base_url=settings.upstream_base_url or "http://cassette.invalid/v1",
                # Local servers (Ollama, vLLM) take any key; the SDK insists on one.
                api_key=settings.upstream_api_key or "unused",
                timeout=settings.upstream_timeout,
                max_retries=2,
                http_client=http_client,
            )

    def model(self, name: str) -> Model:
        if name == self._exec.name:
            return self._exec
        if self._client is None:
            msg = (
                f"The model {name!r} needs an upstream provider: set KERNELGATE_UPSTREAM_BASE_URL (and "
                "KERNELGATE_UPSTREAM_API_KEY if it wants one), or use the built-in model 'kernelgate/exec'."
            )
            raise InvalidRequest(msg, "model")
        return ChatModel(name, name, self._client)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
