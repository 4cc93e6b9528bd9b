"""Log lines as JSON objects (one per line) or text, each with its request's or job's ids.

``configure_logging`` is called once by the ``mixedfit`` command and the worker's main: one
handler on the root logger, whose filter copies the current :mod:`service.context` onto
every record (``request_id``, ``tenant``, ``job_id``, ...), so no call site passes them.
Uvicorn's loggers propagate to it (the server is started with ``log_config=None``), and its
access log is replaced by the app's own access line (``mixedfit.access``), which knows the
route template, the request id and the duration.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from service.context import current

LogFormat = Literal["text", "json"]

# the record attributes the filter sets from the context (None where unknown)
CONTEXT_FIELDS = ("request_id", "tenant", "job_id", "model_id", "attempt")
# attributes a call may pass in ``extra`` that belong in the line (the access line's)
EXTRA_FIELDS = ("method", "route", "path", "status", "duration_ms")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class ContextFilter(logging.Filter):
    """Puts the current request's or job's ids on the record; never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = current()
        values = {"request_id": context.request_id, "tenant": context.tenant,
                  "job_id": context.job_id, "model_id": context.model_id,
                  "attempt": context.attempt}
        for name, value in values.items():
            # a value passed in ``extra`` wins over the context
            if getattr(record, name, None) is None:
                setattr(record, name, value)
        if getattr(record, "method", None) is None and context.method is not None:
            record.method = context.method
        return True


# the text of the last second a line was written in: an access line per request would
# otherwise make a datetime and format it (a few percent of a small request's time)
_second_text: tuple[int, str] = (-1, "")


def _utc_time(record: logging.LogRecord) -> str:
    global _second_text
    # as datetime.fromtimestamp: the fraction rounded (half to even) to microseconds
    second = math.floor(record.created)
    microseconds = round((record.created - second) * 1e6)
    if microseconds >= 1_000_000:
        second, microseconds = second + 1, microseconds - 1_000_000
    cached_second, text = _second_text
    if second != cached_second:
        text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        _second_text = (second, text)
    return f"{text}{microseconds // 1000:03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the
    context's ids and, where present, the access line's fields and the exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _utc_time(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS + EXTRA_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The classic line, UTC, with the context's ids appended as ``[key=value ...]``."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _utc_time(record)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = [f"{name}={getattr(record, name)}" for name in CONTEXT_FIELDS
                  if getattr(record, name, None) is not None]
        if not fields:
            return text
        first, newline, rest = text.partition("\n")  # after the message, before a traceback
        return f"{first} [{' '.join(fields)}]{newline}{rest}"


def make_handler(log_format: LogFormat, stream: TextIO | None = None) -> logging.Handler:
    """A stream handler (stderr by default) writing ``log_format`` lines with the context."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(ContextFilter())
    return handler


def configure_logging(log_format: LogFormat, level: int = logging.INFO) -> None:
    """Root logging for a ``mixedfit`` process: one handler, INFO, the chosen format."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(make_handler(log_format))
    root.setLevel(level)
    # uvicorn's loggers write through the root handler (uvicorn.access is not used: the
    # app writes its own access line)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # Alembic announces each of its plugins at INFO on every start: noise, not news.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
