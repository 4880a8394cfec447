"""Files in a sandbox's /mnt/data, which is a host directory mounted into the container.

Code in the sandbox controls that directory, so every name is walked one component at a time with
O_NOFOLLOW relative to an open directory: a symlink planted by the code (`x -> /etc/passwd`) can never
make the host read or write outside it, and there is no check-then-use race.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from ._errors import InvalidFilePath
from ._models import SandboxFile

__all__ = ["FileStore", "Scan", "changed", "read_small_file"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def read_small_file(path: Path, limit: int) -> bytes:
    """A regular file's bytes, refusing links and anything over `limit` bytes (OSError or ValueError)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as source:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            msg = f"{path.name} is not a regular file"
            raise ValueError(msg)
        data = source.read(limit + 1)
    if len(data) > limit:
        msg = f"{path.name} is larger than {limit} bytes"
        raise ValueError(msg)
    return data


def split_name(name: str) -> tuple[str, ...]:
    """The components of a file name relative to /mnt/data; `/mnt/data/x` is accepted as `x`."""
    if name.startswith("/mnt/data/"):
        name = name.removeprefix("/mnt/data/")
    if not name or "\0" in name:
        raise InvalidFilePath(name, "a file name must be non-empty text")
    if name.startswith("/"):
        raise InvalidFilePath(name, "absolute paths outside /mnt/data are not allowed")
    parts = tuple(part for part in name.split("/") if part not in ("", "."))
    if not parts or ".." in parts:
        raise InvalidFilePath(name, "the name must stay inside /mnt/data")
    return parts


class FileStore:
    """Safe file operations under one root directory, creating files as the kernel's user."""

    def __init__(self, root: Path, owner: tuple[int, int]) -> None:
        self.root = root
        self.owner = owner
        self.chowns = os.getuid() == 0
        """Files the host makes are given to the kernel's user (only root can, and only root needs to)."""

    @contextlib.contextmanager
    def _parent(self, parts: tuple[str, ...], *, create: bool) -> Iterator[int]:
        """An open fd of the directory that holds the last component, refusing links on the way."""
        fd = os.open(self.root, _DIR_FLAGS)
        try:
            for part in parts[:-1]:
                if create:
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, 0o755, dir_fd=fd)
                        if self.chowns:
                            os.chown(part, *self.owner, dir_fd=fd, follow_symlinks=False)
                try:
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    raise
                except OSError as exc:  # ELOOP for a link, ENOTDIR for a file
                    raise InvalidFilePath("/".join(parts), f"{part!r} is a link or not a directory") from exc
                os.close(fd)
                fd = child
            yield fd
        finally:
            os.close(fd)

    def write(self, name: str, data: bytes | Path | BinaryIO) -> SandboxFile:
        """Create or replace a file atomically: code never sees it half written."""
        parts = split_name(name)
        with self._parent(parts, create=True) as dir_fd:
            temp = f".kernelgate-{secrets.token_hex(8)}.tmp"
            fd = os.open(
                temp,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o644,
                dir_fd=dir_fd,
            )
            try:
                with os.fdopen(fd, "wb") as out:
                    if isinstance(data, Path):
                        with data.open("rb") as source:
                            shutil.copyfileobj(source, out, 1024 * 1024)
                    elif isinstance(data, bytes):
                        out.write(data)
                    else:
                        shutil.copyfileobj(data, out, 1024 * 1024)
                    if self.chowns:
                        os.fchown(out.fileno(), *self.owner)
                self._refuse_directory(parts, dir_fd)
                os.rename(temp, parts[-1], src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp, dir_fd=dir_fd)
                raise
            return self._describe(parts, os.stat(parts[-1], dir_fd=dir_fd, follow_symlinks=False))

    def _refuse_directory(self, parts: tuple[str, ...], dir_fd: int) -> None:
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISDIR(os.stat(parts[-1], dir_fd=dir_fd, follow_symlinks=False).st_mode):
                raise InvalidFilePath("/".join(parts), "it is a directory")

    @contextlib.contextmanager
    def open(self, name: str) -> Iterator[tuple[SandboxFile, int]]:
        """A regular file opened for reading, with what it is; links, pipes and devices are refused."""
        parts = split_name(name)
        with self._parent(parts, create=False) as dir_fd:
            try:
                fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
            except FileNotFoundError:
                raise
            except OSError as exc:
                raise InvalidFilePath(name, "it is a link or cannot be opened") from exc
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise InvalidFilePath(name, "it is not a regular file")
            yield self._describe(parts, info), fd
        finally:
            os.close(fd)

    def read(self, name: str) -> bytes:
        with self.open(name) as (_, fd), os.fdopen(os.dup(fd), "rb") as source:
            return source.read()

    def delete(self, name: str) -> None:
        parts = split_name(name)
        with self._parent(parts, create=False) as dir_fd:
            self._refuse_directory(parts, dir_fd)
            os.unlink(parts[-1], dir_fd=dir_fd)

    def scan(self) -> Scan:
        """Every regular file under the root by name; links are neither followed nor listed.

        Names that are not UTF-8 cannot be named to any client: they are counted, not listed.
        """
        scan = self.scan_small(None)
        assert scan is not None
        return scan

    def scan_small(self, limit: int | None) -> Scan | None:
        """`scan()`, or None as soon as more than `limit` entries are seen (scan a large tree elsewhere)."""
        scan = Scan()
        seen = 0
        stack: list[tuple[Path, tuple[str, ...]]] = [(self.root, ())]
        while stack:
            directory, prefix = stack.pop()
            with contextlib.suppress(FileNotFoundError, NotADirectoryError), os.scandir(directory) as entries:
                for entry in entries:
                    seen += 1
                    if limit is not None and seen > limit:
                        return None
                    self._add(scan, stack, entry, (*prefix, entry.name))
        return scan

    def _add(
        self, scan: Scan, stack: list[tuple[Path, tuple[str, ...]]], entry: os.DirEntry[str], parts: tuple[str, ...]
    ) -> None:
        if not _is_utf8(entry.name):
            scan.unnamed += 1
        elif entry.is_dir(follow_symlinks=False):
            stack.append((Path(entry.path), parts))
        elif entry.is_file(follow_symlinks=False) and not entry.name.startswith(".kernelgate-"):
            with contextlib.suppress(FileNotFoundError):
                info = entry.stat(follow_symlinks=False)
                scan.files["/".join(parts)] = (info.st_size, info.st_mtime_ns)

    @staticmethod
    def _describe(parts: tuple[str, ...], info: os.stat_result) -> SandboxFile:
        return SandboxFile(name="/".join(parts), size=info.st_size, modified=info.st_mtime_ns / 1e9)


def _is_utf8(name: str) -> bool:
    """os.scandir decodes a name that is not UTF-8 with surrogates, which no encoder accepts."""
    try:
        name.encode()
    except UnicodeEncodeError:
        return False
    return True


@dataclass
class Scan:
    files: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Name -> (size, modification time in ns): plain tuples, since a tree may hold a million files."""
    unnamed: int = 0
    """Entries whose names are not UTF-8 (directories among them): left out."""

    @property
    def entries(self) -> int:
        return len(self.files) + self.unnamed

    def listing(self, names: Iterable[str] | None = None) -> tuple[SandboxFile, ...]:
        """The files (or those `names` among them) as SandboxFiles, by name."""
        chosen = sorted(self.files if names is None else names)
        # Values made here, from stat: no need to validate them again (a third of the cost at 100,000 files).
        return tuple(
            SandboxFile.model_construct(name=n, size=self.files[n][0], modified=self.files[n][1] / 1e9) for n in chosen
        )


def changed(before: Scan, after: Scan, limit: int) -> tuple[tuple[SandboxFile, ...], int]:
    """Up to `limit` files (by name) that are new in `after` or differ in size or modification time,
    and how many changed in all."""
    names = [name for name, seen in after.files.items() if before.files.get(name) != seen]
    return after.listing(sorted(names)[:limit]), len(names)
