"""The one module that imports `jupyter_client`: a client for one kernel over ipc sockets.

The kernel's five ZMQ sockets are unix sockets in a host directory that is mounted into the container,
so a sandbox needs no network at all. Raw Jupyter messages are translated to our output models here and
nowhere else.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from queue import Empty
from typing import Any

import zmq
import zmq.asyncio
from jupyter_client.asynchronous.client import AsyncKernelClient

from ._files import read_small_file
from ._models import DisplayOutput, ErrorOutput, MimeBundle, Output, ResultOutput, StreamOutput

__all__ = [
    "CONTAINER_CONTROL_DIR",
    "CONTAINER_RUN_DIR",
    "Idle",
    "Ignored",
    "KernelClient",
    "clear_run_dir",
    "read_connection_file",
    "write_connection_file",
]

CONTAINER_RUN_DIR = "/run/kernelgate"
CONTAINER_CONTROL_DIR = "/etc/kernelgate"
_CONNECTION_FILE_MAX = 4096
_BINARY_MIME = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"})
_READY_POLL = 0.25
# Kernel messages queued in this process at most; with the size limit, this bounds their memory.
_QUEUED_MESSAGES = 8
# Seconds of reading messages back to back before the event loop gets a turn.
_READ_WITHOUT_PAUSE = 0.002
# What jupyter_client raises for a message it cannot read: a bad signature, not JSON, a missing header.
_UNREADABLE = (ValueError, TypeError, KeyError, IndexError, AttributeError)
_PORTS = {"shell_port": 1, "iopub_port": 2, "stdin_port": 3, "control_port": 4, "hb_port": 5}


def write_connection_file(control_dir: Path, run_dir: Path, owner: tuple[int, int] | None) -> dict[str, Any]:
    """Write the kernel's connection file into `control_dir` and return the host side's connection info.

    The file holds the key that signs every message, so only the kernel's user may read it. It lives in
    the control directory, which the container mounts read-only: code in the sandbox cannot replace it.
    Both sides share the key; they differ only in where the sockets live: for ipc, `ip` is a path prefix.
    """
    info: dict[str, Any] = {
        "transport": "ipc",
        "ip": f"{CONTAINER_RUN_DIR}/k",
        "key": secrets.token_hex(32),
        "signature_scheme": "hmac-sha256",
        "kernel_name": "python3",
        **_PORTS,
    }
    path = control_dir / "kernel.json"
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(json.dumps(info))
        if owner is not None:
            os.fchown(out.fileno(), *owner)
    return {**info, "ip": str(run_dir / "k")}


def read_connection_file(control_dir: Path, run_dir: Path) -> dict[str, Any]:
    """The host side's connection info from an earlier manager's connection file.

    Read without following links and capped in size; anything but a connection file kernelgate wrote is
    a ValueError, never a crash of the manager that adopts it.
    """
    raw = read_small_file(control_dir / "kernel.json", _CONNECTION_FILE_MAX)
    try:
        info = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        msg = f"its connection file is not JSON ({exc})"
        raise ValueError(msg) from exc
    if not isinstance(info, dict) or not isinstance(info.get("key"), str) or info.get("transport") != "ipc":
        msg = "its connection file is not a kernel's"
        raise ValueError(msg)
    return {**info, **_PORTS, "ip": str(run_dir / "k")}


def clear_run_dir(run_dir: Path) -> None:
    """Empty the kernel's run directory (its sockets, or whatever its code left there) before a restart."""
    with os.scandir(run_dir) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)


@dataclass(frozen=True, slots=True)
class Idle:
    """The kernel finished the execution (its status went back to idle)."""


@dataclass(frozen=True, slots=True)
class Ignored:
    """A message of the current execution that was not valid output: counted, never trusted or raised."""


class KernelClient:
    """One connection to one kernel. Not safe for concurrent executions: the sandbox serialises them.

    Everything the kernel sends is hostile input: its code holds the signing key and can send any
    message. So messages over `max_message_bytes` are refused by ZMQ before they are read, only a few
    are queued in this process (the rest wait in the kernel's own memory), a flood of ready messages
    gives the event loop a turn every 2 ms, and a message that is not valid output becomes `Ignored`.
    """

    def __init__(self, connection_info: dict[str, Any], max_message_bytes: int) -> None:
        self._context = zmq.asyncio.Context()
        self._context.setsockopt(zmq.MAXMSGSIZE, max_message_bytes)
        self._context.setsockopt(zmq.RCVHWM, _QUEUED_MESSAGES)
        self._client = AsyncKernelClient(context=self._context)
        self._client.load_connection_info(connection_info)  # type: ignore[arg-type]  # a TypedDict we fill
        self._msg_id: str | None = None
        self._replied = False
        self._count: int | None = None
        self._reading_since = 0.0

    async def connect(self, timeout: float) -> None:
        """Open the channels and wait until the kernel answers on shell and iopub; TimeoutError if not.

        jupyter_client's own wait_for_ready also watches heartbeats, whose threads and one-second
        deadlines fail under load (many kernels starting at once); the container's state is watched
        instead, by the sandbox.
        """
        self._client.start_channels(hb=False)
        await self._wait_subscribed(timeout)

    async def resubscribe(self, timeout: float) -> None:
        """A new iopub subscription: ZMQ ends one for good when a message breaks its size limit."""
        self._client.iopub_channel.close()
        self._client._iopub_channel = None  # the property makes a fresh one
        self._client.iopub_channel.start()
        await self._wait_subscribed(timeout)

    async def _wait_subscribed(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            self._client.kernel_info()
            try:
                await self._client.get_shell_msg(timeout=min(_READY_POLL, remaining))
                # A reply means the shell is up; an iopub message means our subscription is live too
                # (each kernel_info makes the kernel publish its busy and idle status).
                await self._client.get_iopub_msg(timeout=min(_READY_POLL, remaining))
            except Empty:
                continue
            except _UNREADABLE:
                continue  # not a kernel that started cleanly, or not ours: keep asking until the deadline
            return
        msg = f"the kernel did not answer within {timeout:g} s"
        raise TimeoutError(msg)

    def close(self) -> None:
        self._client.stop_channels()
        self._context.destroy(linger=0)

    def execute(self, code: str, *, silent: bool = False) -> None:
        """Send code to run; `silent` runs it unseen: no execution count, no history, no result shown."""
        self._msg_id = self._client.execute(code, silent=silent, allow_stdin=False, stop_on_error=False)
        self._replied, self._count = False, None
        self._reading_since = time.monotonic()

    async def next_output(self, timeout: float) -> Output | Idle | Ignored | None:
        """The next output of the current execution, Idle when it is done, None if nothing came in time."""
        while True:
            try:
                msg = await self._client.get_iopub_msg(timeout=timeout)
            except Empty:
                return None
            except _UNREADABLE:
                msg = None
            await self._share_the_loop()
            if msg is None:
                return Ignored()
            if _parent_id(msg) != self._msg_id:
                continue  # late output of an earlier, interrupted execution
            event = _translate(msg.get("msg_type"), msg.get("content"))
            if event is not None:
                return event

    async def _share_the_loop(self) -> None:
        """When messages are already waiting, awaiting them never suspends: after a few milliseconds of
        reading without a pause, let the event loop's other tasks run (a turn costs ~0.1 ms, so not
        after every message)."""
        now = time.monotonic()
        if now - self._reading_since >= _READ_WITHOUT_PAUSE:
            await asyncio.sleep(0)
            self._reading_since = time.monotonic()

    async def replied(self) -> bool:
        """Whether the kernel has answered the current execution on the shell channel (never waits)."""
        await self._read_reply(0)
        return self._replied

    async def execution_count(self, timeout: float) -> int | None:
        """The current execution's count from its reply (which also keeps the shell channel drained)."""
        await self._read_reply(timeout)
        return self._count

    async def _read_reply(self, timeout: float) -> None:
        while not self._replied:
            try:
                msg = await self._client.get_shell_msg(timeout=timeout)
            except Empty:
                return
            except _UNREADABLE:
                continue
            if _parent_id(msg) == self._msg_id:
                content = msg.get("content")
                count = content.get("execution_count") if isinstance(content, dict) else None
                self._replied, self._count = True, count if isinstance(count, int) else None


def _parent_id(msg: dict[str, Any]) -> object:
    parent = msg.get("parent_header")
    return parent.get("msg_id") if isinstance(parent, dict) else None


def _translate(msg_type: object, content: object) -> Output | Idle | Ignored | None:
    """Our output for a kernel message; Ignored when it is not what a kernel sends, None when it is no output."""
    if not isinstance(content, dict):
        return Ignored()
    try:
        return _output(msg_type, content)
    except (ValueError, TypeError, KeyError):  # pydantic's ValidationError and binascii.Error are ValueErrors
        return Ignored()


def _output(msg_type: object, content: dict[str, Any]) -> Output | Idle | None:
    if msg_type == "stream":
        return StreamOutput(name=content["name"], text=content["text"])
    if msg_type == "execute_result":
        return ResultOutput(data=_bundle(content["data"]), execution_count=content.get("execution_count"))
    if msg_type in ("display_data", "update_display_data"):
        return DisplayOutput(data=_bundle(content["data"]))
    if msg_type == "error":
        return ErrorOutput(
            name=content.get("ename", "Error"),
            value=content.get("evalue", ""),
            traceback=tuple(content.get("traceback", ())),
        )
    if msg_type == "status" and content.get("execution_state") == "idle":
        return Idle()
    return None


def _bundle(data: object) -> MimeBundle:
    """A MIME bundle with binary types decoded; anything malformed (bad base64 too) is a ValueError."""
    if not isinstance(data, dict) or not data:
        msg = "a display's data must be a non-empty object"
        raise ValueError(msg)
    bundle: MimeBundle = {}
    for mime, value in data.items():
        if mime in _BINARY_MIME and isinstance(value, str):
            bundle[mime] = base64.b64decode(value, validate=True)
        elif isinstance(value, str):
            bundle[mime] = value
        else:
            bundle[mime] = json.dumps(value)
    return bundle
