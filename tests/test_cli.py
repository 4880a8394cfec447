"""`kernelgate exec`: output on the right streams, files and images out, and one exit code per outcome."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import docker
import pytest

from .conftest import IMAGE, labelled

KERNELGATE = str(Path(sys.executable).parent / "kernelgate")

Exec = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def kernelgate_exec(test_root: Path, docker_client: docker.DockerClient) -> Exec:
    """`kernelgate exec` with its private data directory under the test root; no container may outlive it."""

    def run(
        *args: str, stdin: str = "", env: dict[str, str] | None = None, user: Sequence[str] = ()
    ) -> subprocess.CompletedProcess[str]:
        scratch = tempfile.mkdtemp(dir=test_root)  # the CLI's data directory goes below TMPDIR
        os.chmod(scratch, 0o777)  # the non-root run writes here too
        environ = {**os.environ, "KERNELGATE_IMAGE": IMAGE, "TMPDIR": scratch, **(env or {})}
        done = subprocess.run(
            [*user, KERNELGATE, "exec", *args], input=stdin, capture_output=True, text=True, timeout=120, env=environ
        )
        left = [c for c in labelled(docker_client, "kernelgate.managed=true") if scratch in c["Labels"][DATA_DIR]]
        assert left == [], f"kernelgate exec left its container: {left}"
        assert os.listdir(scratch) == [], "kernelgate exec left its data directory"
        return done

    return run


DATA_DIR = "kernelgate.data_dir"


def test_output_goes_to_stdout_and_stderr(tmp_path: Path, kernelgate_exec: Exec) -> None:
    """Prints and the last value go to stdout, stderr prints to stderr; exit 0."""
    script = tmp_path / "job.py"
    script.write_text("import sys\nprint('to out')\nprint('to err', file=sys.stderr)\n6 * 7\n")
    done = kernelgate_exec(str(script))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "to out\n42\n"
    assert done.stderr == "to err\n"


def test_files_in_and_images_and_files_out(tmp_path: Path, kernelgate_exec: Exec) -> None:
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
    done = kernelgate_exec("--file", str(source), "--out", str(out), "-", stdin=code)
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
def test_exit_code_tells_what_happened(
    code: str, args: list[str], status: int, said: str, kernelgate_exec: Exec
) -> None:
    """1 when the code raised, 2 on timeout, 3 out of memory, 4 when the kernel died; stderr says why."""
    done = kernelgate_exec(*args, "-", stdin=code)
    assert done.returncode == status, done.stderr
    assert said in done.stderr


def test_a_missing_image_says_what_to_do(kernelgate_exec: Exec) -> None:
    """No image: exit 125 and the advice to build it, no traceback."""
    done = kernelgate_exec("-", stdin="1", env={"KERNELGATE_IMAGE": "kernelgate/kernel:missing"})
    assert done.returncode == 125
    assert "make image" in done.stderr
    assert "Traceback" not in done.stderr


def test_no_docker_says_what_to_do(kernelgate_exec: Exec) -> None:
    """An unreachable engine: exit 125 and the advice to start Docker or set DOCKER_HOST."""
    done = kernelgate_exec("-", stdin="1", env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert done.returncode == 125
    assert "DOCKER_HOST" in done.stderr


@pytest.mark.skipif(os.getuid() != 0, reason="switching to another user needs root")
def test_works_for_a_non_root_user(tmp_path: Path, kernelgate_exec: Exec) -> None:
    """Run by an ordinary user, the kernel takes that user's uid so the ipc sockets are reachable."""
    docker_gid = int(
        subprocess.run(["getent", "group", "docker"], capture_output=True, text=True, check=True).stdout.split(":")[2]
    )
    # CAP_DAC_READ_SEARCH only lets the user reach this venv's interpreter (often under /root);
    # it grants no write access, so connecting to root's sockets would still fail.
    user = [
        "setpriv",
        "--reuid",
        "4242",
        "--regid",
        str(docker_gid),
        "--clear-groups",
        "--inh-caps=+dac_read_search",
        "--ambient-caps=+dac_read_search",
    ]
    code = "import os\nprint(os.getuid(), os.getgid())"
    done = kernelgate_exec("-", stdin=code, env={"HOME": str(tmp_path)}, user=user)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"4242 {docker_gid}\n"
