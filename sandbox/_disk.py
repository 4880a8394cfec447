"""A sandbox's /mnt/data as a filesystem of its own, so that its disk limits are the filesystem's.

The filesystem is a sparse ext4 image beside the sandbox's files, loop-mounted where /mnt/data's host
directory would be: its size caps the bytes and its inode count caps the files, so code that passes
either gets ENOSPC at once, as on a full disk, and deleting files makes room again. Nothing polls.
The image takes only the blocks written to it. Mounting needs root: without it there is no disk limit
(`available()` says so, and the manager says it once).

The one module that runs mkfs and mount; blocking, so callers run it in a thread.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

__all__ = ["available", "create_disk", "release_disk"]

# No journal (scratch data, faster), no blocks reserved for root, inode tables left for lazy init.
_MKFS = ["mkfs.ext4", "-q", "-F", "-m", "0", "-O", "^has_journal", "-E", "lazy_itable_init=1,nodiscard"]
_MOUNT_OPTIONS = "loop,nosuid,nodev,noatime,noinit_itable"
# The least room per file that a disk is made with: a small disk gets fewer files than max_files.
_BYTES_PER_FILE = 4096


def available() -> str | None:
    """None when disk limits can be made here, else why not."""
    if os.geteuid() != 0:
        return "mounting a filesystem per sandbox needs root"
    missing = [tool for tool in ("mkfs.ext4", "mount", "umount") if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not found (install e2fsprogs and mount)"
    return None


def create_disk(image: Path, mountpoint: Path, size: int, files: int) -> None:
    """Make a `size`-byte filesystem with room for `files` files (fewer if the size holds fewer) and mount
    it at `mountpoint` (made here). OSError says what failed."""
    with image.open("xb") as sparse:
        sparse.truncate(size)
    try:
        _run([*_MKFS, "-N", str(min(files, size // _BYTES_PER_FILE)), str(image)])
        mountpoint.mkdir()
        _run(["mount", "-o", _MOUNT_OPTIONS, str(image), str(mountpoint)])
    except BaseException:
        release_disk(image, mountpoint)
        raise
    (mountpoint / "lost+found").rmdir()  # not the code's to see


def release_disk(image: Path, mountpoint: Path) -> None:
    """Unmount (lazily if something still holds it) and delete the image; what is already gone is fine."""
    if os.path.ismount(mountpoint):
        try:
            _run(["umount", str(mountpoint)])
        except OSError:
            _run(["umount", "--lazy", str(mountpoint)])
    with contextlib.suppress(FileNotFoundError):
        image.unlink()


def _run(command: list[str]) -> None:
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=60)
    except subprocess.CalledProcessError as exc:
        detail = exc.stderr.decode(errors="replace").strip() or f"exit status {exc.returncode}"
        msg = f"{command[0]} failed: {detail}"
        raise OSError(msg) from exc
    except subprocess.TimeoutExpired as exc:
        msg = f"{command[0]} did not finish within {exc.timeout:g} s"
        raise OSError(msg) from exc
