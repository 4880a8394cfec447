"""The Docker engine as a sandbox backend: the only code that imports `docker`."""

from __future__ import annotations

from ._engine import DockerBackend

__all__ = ["DockerBackend"]
