"""What every door's routes share over HTTP: work that stops when the client goes away."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import StreamingResponse

__all__ = ["drain", "fd_response", "while_connected"]

T = TypeVar("T")
_CHUNK = 1024 * 1024


async def while_connected(request: Request, work: Coroutine[Any, Any, T]) -> T:
    """Do the work, cancelling it (and so interrupting the code it runs) if the client goes away."""
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not task.done():
            task.cancel()
    return await task  # re-raises its error, or CancelledError when the client left


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def drain(events: AsyncIterator[Any]) -> None:
    async for _ in events:
        pass


def fd_response(fd: int) -> StreamingResponse:
    """Stream an open file's bytes, closing it at the end (or when the client goes away)."""
    size = os.fstat(fd).st_size

    def chunks() -> Iterator[bytes]:
        try:
            while chunk := os.read(fd, _CHUNK):
                yield chunk
        finally:
            os.close(fd)

    return StreamingResponse(chunks(), media_type="application/octet-stream", headers={"content-length": str(size)})
