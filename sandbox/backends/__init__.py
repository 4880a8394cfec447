"""Sandbox backends, one folder each, implementing `sandbox._backend.Backend`: docker/ today (runc or gVisor)."""
