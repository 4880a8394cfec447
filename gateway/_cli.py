"""The `kernelgate` command: `serve` runs the gateway, `exec` runs code in a fresh sandbox; `doctor`,
`containers` and `gc` are for operators (gateway/_ops.py)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from sandbox import (
    DisplayOutput,
    ErrorOutput,
    Execution,
    ExecutionStatus,
    Finished,
    ResultOutput,
    Sandbox,
    SandboxError,
    SandboxManager,
    SandboxSpec,
    StreamOutput,
)

from ._logs import configure
from ._ops import collect_garbage, diagnose, list_containers, print_checks
from ._settings import Settings, SettingsError

__all__ = ["EXIT_CODES", "main"]

EXIT_CODES = {
    ExecutionStatus.OK: 0,
    ExecutionStatus.ERROR: 1,
    ExecutionStatus.TIMEOUT: 2,
    ExecutionStatus.OUT_OF_MEMORY: 3,
    ExecutionStatus.KERNEL_DIED: 4,
}
EXIT_TOOL_ERROR = 125  # kernelgate itself failed (no Docker, no image), as `docker run` does
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/svg+xml": "svg"}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kernelgate", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the gateway (settings from KERNELGATE_* variables)")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1, or KERNELGATE_HOST)")
    serve.add_argument("--port", type=int, help="port to bind (default 8000, or KERNELGATE_PORT)")
    run = commands.add_parser(
        "exec",
        help="run code in a fresh sandbox and remove it",
        description="Exit status: 0 ok, 1 the code raised, 2 timeout, 3 out of memory, 4 kernel died, "
        f"{EXIT_TOOL_ERROR} kernelgate itself failed.",
    )
    run.add_argument("script", help="a Python file, or - for standard input")
    run.add_argument("--memory-limit", default="1g", help="container memory limit (default 1g)")
    run.add_argument("--file", type=Path, action="append", default=[], help="a file to put in /mnt/data")
    run.add_argument("--timeout", type=float, help="seconds before the code is interrupted")
    run.add_argument("--out", type=Path, help="directory for images and the files the code wrote")
    commands.add_parser(
        "doctor",
        help="check the engine, runtime, image, permissions, disk and upstreams, and say what to fix",
        description="Exit status: 0 ready, 1 a check failed.",
    )
    commands.add_parser("containers", help="list the data directory's containers, with memory and expiry")
    commands.add_parser(
        "gc",
        help="remove what a gateway that never came back left behind (refused while one runs)",
        description="Removes every sandbox of KERNELGATE_DATA_DIR, the warm pool's too, and any container "
        "whose data directory is gone. Refused while a gateway holds the data directory.",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "doctor":
        print("kernelgate doctor")
        return print_checks(asyncio.run(diagnose()), sys.stdout)
    try:
        settings = Settings.from_env()
        if args.command == "serve":
            return _serve(settings, args.host, args.port)
        if args.command == "containers":
            return asyncio.run(list_containers(settings, sys.stdout))
        if args.command == "gc":
            return asyncio.run(collect_garbage(settings, sys.stdout))
        code = sys.stdin.read() if args.script == "-" else Path(args.script).read_text()
        return asyncio.run(_exec(settings, args, code))
    except (SettingsError, SandboxError, OSError, ValueError) as exc:
        print(f"kernelgate: {exc}", file=sys.stderr)
        return EXIT_TOOL_ERROR
    except KeyboardInterrupt:
        return 130


def _serve(settings: Settings, host: str | None, port: int | None) -> int:
    import uvicorn

    from ._app import create_app

    settings = settings.model_copy(update={"host": host or settings.host, "port": port or settings.port})
    # Scans of a sandbox's files run in threads; with the default 5 ms switch interval each one makes
    # every I/O handoff of the event loop's thread wait up to 5 ms for the GIL. The server is for latency.
    sys.setswitchinterval(0.001)
    configure(settings.log_format, settings.log_level)  # uvicorn's loggers too: it is given no configuration
    logging.getLogger("kernelgate.gateway").info(
        "kernelgate on %(base)s: the playground at %(base)s/, the OpenAI API at %(base)s/v1, Anthropic's at "
        "%(base)s/anthropic, Gemini's at %(base)s/gemini, Prometheus metrics at %(base)s/metrics, status at "
        "%(base)s/health",
        {"base": f"http://{settings.host}:{settings.port}"},
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,  # kernelgate logs each request itself, with its request id (gateway/_observe.py)
    )
    return 0


async def _exec(settings: Settings, args: argparse.Namespace, code: str) -> int:
    spec = SandboxSpec(memory_limit=args.memory_limit, files={p.name: p for p in args.file})
    # A private data directory: a gateway using the shared one must never see, adopt or reap this run.
    with tempfile.TemporaryDirectory(prefix="kernelgate-exec-") as data_dir:
        async with SandboxManager(settings.sandbox_config(Path(data_dir))) as manager:
            sandbox = await manager.create(spec)
            execution = await _run(sandbox, code, args.timeout, args.out)
            if args.out is not None:
                await asyncio.to_thread(_save_files, sandbox, execution, args.out)
    if execution.message:
        print(f"kernelgate: {execution.message}", file=sys.stderr)
    return EXIT_CODES[execution.status]


async def _run(sandbox: Sandbox, code: str, timeout: float | None, out: Path | None) -> Execution:
    images = 0
    async for event in sandbox.stream(code, timeout=timeout):
        if isinstance(event, Finished):
            return event.execution
        if isinstance(event, StreamOutput):
            _write(sys.stdout if event.name == "stdout" else sys.stderr, event.text)
        elif isinstance(event, ErrorOutput):
            _write(sys.stderr, event.text + "\n")
        elif isinstance(event, ResultOutput) and event.text is not None:
            _write(sys.stdout, event.text + "\n")
        elif isinstance(event, DisplayOutput) and out is not None:
            images += _save_images(event, out, images)
    msg = "an execution stream always ends with Finished"
    raise AssertionError(msg)


def _write(stream: TextIO, text: str) -> None:
    stream.write(text)
    stream.flush()


def _save_images(event: DisplayOutput, out: Path, count: int) -> int:
    for mime, extension in _EXTENSIONS.items():
        data = event.data.get(mime)
        if data is not None:
            out.mkdir(parents=True, exist_ok=True)
            path = out / f"image-{count + 1}.{extension}"
            path.write_bytes(data if isinstance(data, bytes) else data.encode())
            return 1
    return 0


def _save_files(sandbox: Sandbox, execution: Execution, out: Path) -> None:
    """Copy the files the code created or changed into `out`, keeping their relative names."""
    out.mkdir(parents=True, exist_ok=True)
    for file in execution.files:
        target = out / file.name
        target.parent.mkdir(parents=True, exist_ok=True)
        with (
            sandbox.open_file(file.name) as (_, fd),
            open(fd, "rb", closefd=False) as source,
            target.open("wb") as sink,
        ):
            shutil.copyfileobj(source, sink)
