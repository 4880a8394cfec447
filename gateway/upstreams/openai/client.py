"""What Chat Completions and the Responses API share: the openai SDK's client, its errors, image URLs."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager

import httpx2
import openai

from ...conversation.items import CodeCall
from ...conversation.model import ModelError
from ..providers import Provider

__all__ = ["OpenAIClient", "image_urls", "upstream_errors"]


class OpenAIClient:
    """The openai SDK's client for one provider: streaming, timeouts, retries with backoff."""

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


def image_urls(call: CodeCall) -> list[str]:
    return ["data:image/png;base64," + base64.b64encode(png).decode() for png in call.images]
