"""A sandbox's settings as container labels, so that a new manager can adopt what an old one started."""

from __future__ import annotations

from pathlib import Path

from ._models import SandboxSpec

__all__ = [
    "DATA_DIR",
    "MANAGED_LABEL",
    "POOLED",
    "SANDBOX_ID",
    "labels_for",
    "spec_from_labels",
]

MANAGED_LABEL = "kernelgate.managed"
DATA_DIR = "kernelgate.data_dir"
SANDBOX_ID = "kernelgate.sandbox_id"
_CREATED = "kernelgate.created_at"
_MEMORY = "kernelgate.memory_limit"
_IDLE = "kernelgate.idle_timeout"
_NETWORK = "kernelgate.network"
_CPUS = "kernelgate.cpus"
_USER_PREFIX = "kernelgate.label."
POOLED = "kernelgate.pool"
"""On a container made for the warm pool: `true`. Docker's labels are fixed when a container is made,
so once the pool hands the sandbox out its labels are those of its claim (`Sandbox.labels`), which
say `claimed` here and carry the spec it was claimed with."""


def labels_for(
    data_dir: Path, sandbox_id: str, spec: SandboxSpec, created_at: float, pooled: str | None = None
) -> dict[str, str]:
    """`pooled`: `true` for a container the warm pool makes, `claimed` once it is handed out."""
    labels = {
        DATA_DIR: str(data_dir),
        SANDBOX_ID: sandbox_id,
        _CREATED: repr(created_at),
        _MEMORY: spec.memory_limit,
        _IDLE: repr(spec.idle_timeout),
        _NETWORK: "true" if spec.network else "false",
    }
    if spec.cpus is not None:
        labels[_CPUS] = repr(spec.cpus)
    if pooled is not None:
        labels[POOLED] = pooled
    labels.update({_USER_PREFIX + key: value for key, value in spec.labels.items()})
    return labels


def spec_from_labels(labels: dict[str, str]) -> tuple[SandboxSpec, float]:
    """The spec a container was started with (without its initial files) and its creation time."""
    spec = SandboxSpec(
        memory_limit=labels[_MEMORY],
        idle_timeout=float(labels[_IDLE]),
        network=labels.get(_NETWORK) == "true",
        cpus=float(labels[_CPUS]) if _CPUS in labels else None,
        labels={k.removeprefix(_USER_PREFIX): v for k, v in labels.items() if k.startswith(_USER_PREFIX)},
    )
    return spec, float(labels[_CREATED])
