"""`kernelgate exec`: output on the right streams, files and images out, and one exit code per outcome."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import IMAGE

KERNELGATE = str(Path(sys.executable).parent / "kernelgate")


def _exec(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "KERNELGATE_IMAGE": IMAGE, **(env or {})}
    return subprocess.run(
        [KERNELGATE, "exec", *args], input=stdin, capture_output=True, text=True, timeout=120, env=environ
    )


def test_output_goes_to_stdout_and_stderr(tmp_path: Path) -> None:
    """Prints and the last value go to stdout, stderr prints to stderr; exit 0."""
    script = tmp_path / "job.py"
    script.write_text("import sys\nprint('to out')\nprint('to err', file=sys.stderr)\n6 * 7\n")
    done = _exec(str(script))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "to out\n42\n"
    assert done.stderr == "to err\n"


def test_files_in_and_images_and_files_out(tmp_path: Path) -> None:
    """--file puts a file in /mnt/data; --out receives the images and the files the code wrote."""
    source = tmp_path / "numbers.txt"
    source.write_text("1 2 3")
    out = tmp_path / "out"
    code = (
        "import matplotlib.pyplot as plt\n"
        "total = sum(map(int, open('numbers.txt').read().split()))\n"
        "open('total.txt', 'w').write(str(total))\n"
        "plt.plot([1, 2]); plt.show()\n"
    )
    done = _exec("--file", str(source), "--out", str(out), "-", stdin=code)
    assert done.returncode == 0, done.stderr
    assert (out / "total.txt").read_text() == "6"
    assert (out / "image-1.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("code", "args", "status", "said"),
    [
        ("1/0", [], 1, "ZeroDivisionError"),
        ("import time; time.sleep(30)", ["--timeout", "1"], 2, "timed out"),
        ("x = bytearray(1024**3)", ["--memory-limit", "256m"], 3, "256m memory limit"),
        ("import os; os._exit(9)", [], 4, "exit code 9"),
    ],
)
def test_exit_code_tells_what_happened(code: str, args: list[str], status: int, said: str) -> None:
    """1 when the code raised, 2 on timeout, 3 out of memory, 4 when the kernel died; stderr says why."""
    done = _exec(*args, "-", stdin=code)
    assert done.returncode == status, done.stderr
    assert said in done.stderr


def test_a_missing_image_says_what_to_do() -> None:
    """No image: exit 125 and the advice to build it, no traceback."""
    done = _exec("-", stdin="1", env={"KERNELGATE_IMAGE": "kernelgate/kernel:missing"})
    assert done.returncode == 125
    assert "make image" in done.stderr
    assert "Traceback" not in done.stderr


def test_no_docker_says_what_to_do() -> None:
    """An unreachable engine: exit 125 and the advice to start Docker or set DOCKER_HOST."""
    done = _exec("-", stdin="1", env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert done.returncode == 125
    assert "DOCKER_HOST" in done.stderr


@pytest.mark.skipif(os.getuid() != 0, reason="switching to another user needs root")
def test_works_for_a_non_root_user(tmp_path: Path) -> None:
    """Run by an ordinary user, the kernel takes that user's uid so the ipc sockets are reachable."""
    docker_gid = int(
        subprocess.run(["getent", "group", "docker"], capture_output=True, text=True, check=True).stdout.split(":")[2]
    )
    # CAP_DAC_READ_SEARCH only lets the user reach this venv's interpreter (often under /root);
    # it grants no write access, so connecting to root's sockets would still fail.
    command = [
        "setpriv",
        "--reuid",
        "4242",
        "--regid",
        str(docker_gid),
        "--clear-groups",
        "--inh-caps=+dac_read_search",
        "--ambient-caps=+dac_read_search",
        KERNELGATE,
        "exec",
        "-",
    ]
    done = subprocess.run(
        command,
        input="import os\nprint(os.getuid(), os.getgid())",
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "KERNELGATE_IMAGE": IMAGE, "HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"4242 {docker_gid}\n"
