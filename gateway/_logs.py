"""Logging: what each line is about (request, response, container), and the JSON format.

The ids live in context variables: the HTTP middleware binds a request id for everything a request
runs, sessions bind the response id and the container id as they learn them, and background work
started from a request inherits them. `KERNELGATE_LOG_FORMAT=json` prints one JSON object per line
with those ids beside the message; the text format appends them as `key=value`.
"""

from __future__ import annotations

import contextvars
import json
import logging
import time
from typing import Any

__all__ = ["JsonFormatter", "TextFormatter", "bind", "configure", "log_config"]

_IDS: dict[str, contextvars.ContextVar[str | None]] = {
    name: contextvars.ContextVar(f"kernelgate_{name}", default=None)
    for name in ("request_id", "response_id", "container_id")
}


def bind(*, request_id: str | None = None, response_id: str | None = None, container_id: str | None = None) -> None:
    """Name what the current task (and the tasks it starts from here on) is about in its log lines."""
    for name, value in (("request_id", request_id), ("response_id", response_id), ("container_id", container_id)):
        if value is not None:
            _IDS[name].set(value)


def _ids() -> dict[str, str]:
    return {name: value for name, var in _IDS.items() if (value := var.get()) is not None}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the bound ids, and any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **_ids(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`LEVEL:    message  request_id=... container_id=...`, uvicorn's own shape with the ids after it."""

    def format(self, record: logging.LogRecord) -> str:
        text = f"{record.levelname + ':':<10}{record.getMessage()}"
        if ids := _ids():
            text += "  " + " ".join(f"{name}={value}" for name, value in ids.items())
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def log_config(log_format: str, level: str) -> dict[str, Any]:
    """A logging configuration (dictConfig) for uvicorn and kernelgate alike, in one format."""
    formatter = {"()": f"{__name__}.{'JsonFormatter' if log_format == 'json' else 'TextFormatter'}"}
    handler = {"class": "logging.StreamHandler", "formatter": "kernelgate", "stream": "ext://sys.stderr"}
    loggers = ("kernelgate", "uvicorn", "uvicorn.error", "uvicorn.access")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"kernelgate": formatter},
        "handlers": {"kernelgate": handler},
        "loggers": {name: {"handlers": ["kernelgate"], "level": level.upper(), "propagate": False} for name in loggers},
    }


def configure(log_format: str, level: str) -> None:
    """Apply `log_config` to this process."""
    import logging.config

    logging.config.dictConfig(log_config(log_format, level))
