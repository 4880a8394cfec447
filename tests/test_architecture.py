"""The gateway's layers import downward only, and each foreign library sits behind its one seam."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

GATEWAY = Path(__file__).resolve().parent.parent / "gateway"
SANDBOX = GATEWAY.parent / "sandbox"

# Lowest first: a module may import its own layer and the ones below it, never one above.
LAYERS = {
    "_errors": 0,
    "_ids": 0,
    "_logs": 0,
    "_metrics": 0,
    "workspace": 1,
    "conversation": 2,
    "upstreams": 3,
    "wire": 4,
    "_limits": 5,
    "_observe": 5,
    "_ops": 5,
    "_settings": 5,
    "_app": 5,
    "_cli": 5,
    "testing": 5,
    "__init__": 5,
    "__main__": 5,
}


def _layer(module: str) -> int:
    """The layer of a module given as a path below gateway/ (`wire.openai._errors`)."""
    return LAYERS[module.split(".")[0]]


def _imports(path: Path) -> list[str]:
    """The gateway modules a file imports, as paths below gateway/ (relative imports resolved)."""
    package = path.relative_to(GATEWAY).parent.parts
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = list(package[: len(package) - (node.level - 1)])
            found.append(".".join([*base, *(node.module or "").split(".")]).strip("."))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gateway."):
            found.append((node.module or "").removeprefix("gateway."))
    return [name for name in found if name]


def _modules() -> list[Path]:
    return sorted(GATEWAY.rglob("*.py"))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(GATEWAY)))
def test_no_gateway_layer_imports_upward(path: Path) -> None:
    """errors/ids/logs/metrics < workspace < conversation < upstreams < wire < the app: imports go down, never up."""
    own = _layer(".".join(path.relative_to(GATEWAY).with_suffix("").parts))
    upward = [name for name in _imports(path) if _layer(name) > own]
    assert upward == [], f"{path.relative_to(GATEWAY)} (layer {own}) imports upward: {upward}"


def _third_party(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize(
    ("library", "seams"),
    [
        ("docker", {"sandbox/backends/docker"}),
        ("jupyter_client", {"sandbox/_kernel.py"}),
        ("fastapi", {"gateway/_app.py", "gateway/_limits.py", "gateway/wire"}),
        ("anthropic", {"gateway/upstreams/anthropic.py"}),
        ("google", {"gateway/upstreams/gemini.py"}),
        ("openai", {"gateway/upstreams/openai"}),
        ("prometheus_client", {"gateway/_metrics.py"}),
    ],
)
def test_each_foreign_library_sits_behind_its_seam(library: str, seams: set[str]) -> None:
    """docker, jupyter_client, FastAPI and each provider's SDK are imported only where their seam is."""
    root = GATEWAY.parent
    users = {
        str(path.relative_to(root))
        for path in [*SANDBOX.rglob("*.py"), *GATEWAY.rglob("*.py")]
        if library in _third_party(path)
    }
    outside = {user for user in users if not any(user == seam or user.startswith(seam + "/") for seam in seams)}
    assert users, f"nothing imports {library}: the test is looking in the wrong place"
    assert outside == set(), f"{library} is imported outside its seam: {sorted(outside)}"
