"""kernelgate's gateway: the HTTP face of the sandboxes, in the wire formats of LLM providers."""

from __future__ import annotations

from ._app import create_app
from ._cli import main
from ._settings import Settings, SettingsError

__all__ = ["Settings", "SettingsError", "create_app", "main"]
