"""The operator's commands: `kernelgate doctor`, `kernelgate containers` and `kernelgate gc`.

Each works beside a running gateway (none takes the data directory's lock but gc, which refuses while
a gateway holds it) and after one died, from the engine's containers and the data directory's files.
"""

from __future__ import annotations

import enum
import os
import shutil
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from sandbox import (
    DataDirInUse,
    SandboxConfig,
    SandboxError,
    SandboxManager,
    disk_limits_unavailable,
    survey,
)
from sandbox.backends.docker import DockerBackend

from ._settings import Settings, SettingsError
from .workspace.containers import CONTAINER_LABEL
from .workspace.store import STORE_FILE, container_names

__all__ = ["Check", "Verdict", "collect_garbage", "diagnose", "list_containers", "print_checks"]

_GIB = 1024**3
# The data directory's free space: below the first a sandbox's files may not fit, below the second
# little else will; the kernel image itself needs about 1.1 GB of Docker's.
_DISK_WARN, _DISK_FAIL = 5 * _GIB, 1 * _GIB


class Verdict(enum.Enum):
    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    verdict: Verdict
    detail: str
    fix: str | None = None


# -- doctor -----------------------------------------------------------------------------------------


async def diagnose(environ: Mapping[str, str] | None = None) -> list[Check]:
    """Every check, in the order a fix makes sense: the settings, the engine, then what depends on it."""
    checks: list[Check] = []
    try:
        settings = Settings.from_env(environ)
        config = settings.sandbox_config(pool=True)
    except SettingsError as exc:
        return [Check("settings", Verdict.FAIL, str(exc), "correct the variable it names")]
    checks.append(_data_dir(config.data_dir))
    checks.append(_disk_space(config.data_dir))
    backend = DockerBackend(config.docker_host)
    try:
        checks += await _engine(backend, config)
    finally:
        backend.close()
    checks.append(_disk_limits(config))
    checks.append(_kernel_user(config))
    checks += _upstreams(settings)
    checks.append(_port(settings))
    return checks


def print_checks(checks: list[Check], out: TextIO) -> int:
    """The report; 1 when any check failed."""
    for check in checks:
        print(f"  {check.verdict.value:<5} {check.name}: {check.detail}", file=out)
        if check.fix and check.verdict is not Verdict.OK:
            print(f"        fix: {check.fix}", file=out)
    failed = sum(check.verdict is Verdict.FAIL for check in checks)
    warned = sum(check.verdict is Verdict.WARN for check in checks)
    if failed:
        print(f"{failed} problem(s) to fix; {warned} warning(s).", file=out)
    else:
        print(f"Ready: kernelgate can run code here ({warned} warning(s)).", file=out)
    return 1 if failed else 0


def _data_dir(path: Path) -> Check:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".doctor-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        return Check(
            "data directory",
            Verdict.FAIL,
            f"{path} cannot be written: {exc.strerror or exc}",
            "set KERNELGATE_DATA_DIR to a directory this user owns (short: the kernel's sockets live there)",
        )
    return Check("data directory", Verdict.OK, f"{path} is writable")


def _disk_space(path: Path) -> Check:
    existing = next((p for p in (path, *path.parents) if p.exists()), Path("/"))
    free = shutil.disk_usage(existing).free
    detail = f"{free / _GIB:.1f} GiB free under {existing}"
    fix = "free space there, or set KERNELGATE_DATA_DIR to a roomier filesystem"
    if free < _DISK_FAIL:
        return Check("disk space", Verdict.FAIL, detail, fix)
    if free < _DISK_WARN:
        return Check("disk space", Verdict.WARN, detail + " (sandboxes' files and uploads live there)", fix)
    return Check("disk space", Verdict.OK, detail)


async def _engine(backend: DockerBackend, config: SandboxConfig) -> list[Check]:
    try:
        version = await backend.version()
        host = await backend.host()
        image_id = await backend.image_id(config.image)
    except SandboxError as exc:
        fix = "start Docker (sudo systemctl start docker, or sudo dockerd &), or set DOCKER_HOST to where it listens"
        if "Permission denied" in str(exc):
            fix = "let this user use Docker: sudo usermod -aG docker $USER, then log in again"
        return [Check("Docker engine", Verdict.FAIL, str(exc), fix)]
    checks = [Check("Docker engine", Verdict.OK, f"Docker {version}, {host.memory / _GIB:.1f} GiB of memory")]
    runtime = config.runtime or "runc"
    if config.runtime and config.runtime not in host.runtimes:
        fix = "register it (`make gvisor` for runsc), or unset KERNELGATE_RUNTIME"
        detail = f"Docker has no runtime {runtime!r} (it has {', '.join(host.runtimes)})"
        checks.append(Check("runtime", Verdict.FAIL, detail, fix))
    else:
        checks.append(Check("runtime", Verdict.OK, f"sandboxes run under {runtime}"))
    if image_id is None:
        fix = "build it: make image" if config.image.startswith("kernelgate/kernel") else f"docker pull {config.image}"
        checks.append(Check("kernel image", Verdict.FAIL, f"{config.image} is missing", fix))
    else:
        checks.append(Check("kernel image", Verdict.OK, f"{config.image} ({image_id[7:19]})"))
    pooled = sum(config.pool.values())
    if pooled and host.memory and pooled * 100 * 1024**2 > host.memory / 4:
        detail = f"a pool of {pooled} holds about {pooled * 100} MB (100 MB each with the warm imports)"
        checks.append(Check("warm pool", Verdict.WARN, detail, "lower KERNELGATE_POOL"))
    return checks


def _disk_limits(config: SandboxConfig) -> Check:
    if config.disk_limit is None:
        return Check("disk limits", Verdict.OK, "off (KERNELGATE_DISK_LIMIT=off): /mnt/data may fill its disk")
    reason = disk_limits_unavailable()
    if reason is not None:
        detail = f"sandboxes get no disk limit: {reason}; code can fill the data directory's disk"
        return Check("disk limits", Verdict.WARN, detail, "run the gateway as root, or KERNELGATE_DISK_LIMIT=off")
    return Check("disk limits", Verdict.OK, f"{config.disk_limit / _GIB:g} GiB of /mnt/data per sandbox")


def _kernel_user(config: SandboxConfig) -> Check:
    uid, gid = config.user
    if os.getuid() != 0 and uid != os.getuid():
        detail = f"kernels run as uid {uid} but the gateway as {os.getuid()}: it cannot reach their sockets"
        return Check("kernel user", Verdict.FAIL, detail, "unset kernel_user, or run the gateway as that user")
    who = "the gateway's own ids" if os.getuid() != 0 else "the image's unprivileged user"
    return Check("kernel user", Verdict.OK, f"kernels run as {uid}:{gid} ({who})")


def _upstreams(settings: Settings) -> list[Check]:
    checks = []
    default = settings.default_provider()
    if default is None:
        detail = "none: kernelgate/exec and the providers' prefixed names answer, no other model name"
        checks.append(Check("default upstream", Verdict.OK, detail))
    elif default.api_key is None and default.api_key_env is not None and settings.cassette is None:
        detail = f"{default.base_url} ({default.api} API) needs a key"
        checks.append(Check("default upstream", Verdict.FAIL, detail, f"set {default.api_key_env}"))
    else:
        checks.append(Check("default upstream", Verdict.OK, f"{default.base_url} ({default.api} API)"))
    keyed = [name for name, p in settings.all_providers().items() if p.api_key is not None or p.api_key_env is None]
    if keyed:
        checks.append(Check("providers", Verdict.OK, "ready: " + ", ".join(f"{name}/" for name in sorted(keyed))))
    if settings.cassette is not None and settings.cassette_mode == "replay" and not settings.cassette.is_file():
        detail = f"{settings.cassette} does not exist, so nothing can be replayed"
        fix = "record it first (KERNELGATE_CASSETTE_MODE=record), or fix KERNELGATE_CASSETTE"
        checks.append(Check("cassette", Verdict.FAIL, detail, fix))
    return checks


def _port(settings: Settings) -> Check:
    with socket.socket() as probe:
        probe.settimeout(1)
        taken = probe.connect_ex((settings.host, settings.port)) == 0
    if taken:
        detail = f"{settings.host}:{settings.port} is taken (a gateway already running there? GET /health)"
        return Check("port", Verdict.WARN, detail, "stop it, or serve on another port: make run PORT=8001")
    return Check("port", Verdict.OK, f"{settings.host}:{settings.port} is free")


# -- containers -------------------------------------------------------------------------------------


async def list_containers(settings: Settings, out: TextIO) -> int:
    """The data directory's sandboxes: container, name, state, memory used and limit, time to expiry."""
    config = settings.sandbox_config()
    found = await survey(config)
    names = container_names(settings.data_dir / STORE_FILE)
    print(f"{'CONTAINER':<40} {'NAME':<16} {'STATE':<9} {'MEMORY':>17} {'EXPIRES':>9}  SANDBOX", file=out)
    now = time.time()
    for info in found:
        container_id = info.caller_labels.get(CONTAINER_LABEL, "-")
        state = "pool" if info.pooled else ("running" if info.running else "stopped")
        used = f"{info.memory_used / 1024**2:.0f}M" if info.memory_used is not None else "-"
        expires = _duration(info.expires_at - now) if info.expires_at is not None and not info.pooled else "-"
        name = names.get(container_id, "")[:16]
        line = f"{container_id:<40} {name:<16} {state:<9} {used + ' / ' + info.memory_limit:>17} {expires:>9}"
        print(f"{line}  {info.sandbox_id}", file=out)
    print(f"{len(found)} container(s) of {config.data_dir}", file=out)
    return 0


def _duration(seconds: float) -> str:
    if seconds <= 0:
        return "expired"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.0f}h"


# -- gc ---------------------------------------------------------------------------------------------


async def collect_garbage(settings: Settings, out: TextIO) -> int:
    """Remove everything a gateway left on this data directory (its sandboxes, its pool) and containers
    whose data directory is gone; refused while a gateway holds the data directory."""
    config = settings.sandbox_config().model_copy(update={"adopt": False})
    try:
        async with SandboxManager(config) as manager:
            recovery = manager.recovery
    except DataDirInUse:
        print(
            f"kernelgate gc: a gateway is running on {config.data_dir}; it removes what it does not own itself. "
            "Stop it first, or point KERNELGATE_DATA_DIR elsewhere.",
            file=out,
        )
        return 1
    removed = [*recovery.removed, *recovery.pool_removed]
    for sandbox_id in removed:
        print(f"removed {sandbox_id}", file=out)
    print(f"{len(removed)} sandbox(es) removed from {config.data_dir}", file=out)
    return 0
