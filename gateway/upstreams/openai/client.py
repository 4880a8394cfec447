"""What Chat Completions and the Responses API share: the openai SDK's client, its errors, image URLs."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import ClassVar

import httpx2
import openai

from ...conversation.items import CodeCall, data_url
from ...conversation.model import Model, ModelError, ModelEvent, Turn
from ..providers import Provider

__all__ = ["OpenAIClient", "OpenAIModel", "given", "image_urls", "upstream_errors"]


class OpenAIModel(ABC):
    """A model behind one of OpenAI's APIs: the client, and how the provider wants it asked."""

    def __init__(
        self, name: str, upstream_model: str, client: openai.AsyncOpenAI, *, stream: bool = True, vision: bool = False
    ) -> None:
        self.name = name
        self._upstream_model = upstream_model
        self._client = client
        self._stream = stream
        self._vision = vision

    @abstractmethod
    def respond(self, turn: Turn) -> AsyncIterator[ModelEvent]: ...


class OpenAIClient:
    """The openai SDK's client for one provider: streaming, timeouts, retries with backoff."""

    model_class: ClassVar[type[OpenAIModel]]
    """The API's model: Chat Completions' or the Responses API's."""

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
        return self.model_class(name, upstream_model, self._client, stream=self._provider.stream, vision=vision)

    async def aclose(self) -> None:
        await self._client.close()


@contextmanager
def upstream_errors() -> Iterator[None]:
    """The openai SDK's errors (raised after its retries) as ModelError, with the upstream's status."""
    try:
        yield
    except openai.APIStatusError as exc:
        raise ModelError.failed(exc.status_code, exc.message, exc.response) from exc
    except (openai.APIConnectionError, openai.APITimeoutError) as exc:
        raise ModelError.unreachable(exc.message, isinstance(exc, openai.APITimeoutError)) from exc
    except (openai.OpenAIError, ValueError) as exc:  # a body the SDK could not parse, a bad event
        raise ModelError.unreadable(exc) from exc


def given(value: float | None) -> float | openai.Omit:
    """A setting the request made, or none sent at all (the upstream's default)."""
    return openai.omit if value is None else value


def image_urls(call: CodeCall) -> list[str]:
    return [data_url("image/png", png) for png in call.images]
