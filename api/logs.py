"""Structured logs: one line per record, JSON or text, each with its request's id.

`customs-ledger serve` sends every record of the process (ours and uvicorn's) through one
handler on stderr; see docs/observability.md for the fields.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import IO, Any

import msgspec

from api.observability import current_request_id

ACCESS_FIELDS = ("method", "route", "path", "status", "duration_ms", "actor")
_JSON = msgspec.json.Encoder()


class RequestIdFilter(logging.Filter):
    """Gives every record the id of the request it was logged in (None outside requests)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id()
        return True


def _timestamp(created: float) -> str:
    """UTC, milliseconds, `Z`: 2026-11-27T04:05:06.789Z."""
    return datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, request_id and the access fields
    when the record has them, exc with the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = record.__dict__
        if fields.get("request_id") is not None:
            line["request_id"] = fields["request_id"]
        for name in ACCESS_FIELDS:
            if fields.get(name) is not None:
                line[name] = fields[name]
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return _JSON.encode(line).decode()


class TextFormatter(logging.Formatter):
    """A line for a person at a terminal; control characters in the message are escaped (a
    path is the client's text)."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if not message.isprintable():
            message = message.encode("unicode_escape").decode("ascii")
        request_id = getattr(record, "request_id", None)
        actor = getattr(record, "actor", None)
        line = (
            f"{self.formatTime(record)} {record.levelname:<7} {record.name}"
            + (f" [{request_id}]" if request_id else "")
            + f" {message}"
            + (f" by {actor}" if actor else "")
        )
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def log_handler(log_format: str, stream: IO[str] | None = None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    return handler


def configure_logging(log_format: str, level: int) -> None:
    """Every record of the process (ours, uvicorn's) to stderr through one handler."""
    root = logging.getLogger()
    for handler in root.handlers[:]:
        root.removeHandler(handler)
    root.addHandler(log_handler(log_format))
    root.setLevel(level)
