"""How every process of the app server logs: one format for the server's own lines and the app's.

LOG_FORMAT=json (compose, Kubernetes) writes one JSON object per line, for a log collector;
LOG_FORMAT=text (`make local`) a line for people. Either way each line carries the process id and,
while a request is being served, its request id: the X-Request-ID nginx passes (served_app.py
sets it for the request's duration), so that nginx's access line and every line the app writes for
that request can be found together.

Each server's config hands `dict_config()` to logging.config.dictConfig (gunicorn.conf.py's logger class,
uvicorn's log_config, hypercorn's logconfig_dict, granian's --log-config): the server's loggers
lose their own handlers and propagate to the root logger, which the app's loggers reach too.
"""

from __future__ import annotations

import contextvars
import json
import logging
import time
import traceback
from collections.abc import Callable
from typing import Any

from .settings import Settings

# Set by served_app.py for the request being served in this thread or task.
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

# The access line's logger (served_app.py): on with ACCESS_LOG=1. nginx's access line
# has every request already, with its id; the app server's adds the worker's pid and own time.
ACCESS_LOGGER = "app.access"
# What the access line adds to a record, written as fields of their own.
ACCESS_FIELDS = ("method", "path", "status", "client", "duration_ms", "queue_ms")


class RequestIdStamp:
    """A log record factory: the record, with the request id current where it was made."""

    def __init__(self, make_record: Callable[..., logging.LogRecord]) -> None:
        self.make_record = make_record

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.make_record(*args, **kwargs)
        record.request_id = request_id.get()
        return record


def stamp_request_ids() -> None:
    """From now on every log record made in this process carries the request id current where it
    was made (served_app.py calls this in each worker), whenever and wherever it is written."""
    current = logging.getLogRecordFactory()
    if not isinstance(current, RequestIdStamp):
        logging.setLogRecordFactory(RequestIdStamp(current))


def _iso_time(created: float) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"


def _current_request_id(record: logging.LogRecord) -> str | None:
    return getattr(record, "request_id", None) or request_id.get()


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, pid, request_id, message, and the access
    fields or the traceback where there is one. A message never spans lines: newlines are escaped."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _iso_time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "request_id": _current_request_id(record),
            "message": record.getMessage(),
        }
        for name in ACCESS_FIELDS:
            if hasattr(record, name):
                line[name] = getattr(record, name)
        if record.exc_info:
            line["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    """`time [pid] LEVEL logger [request id] message`, with the access fields after the message."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s [%(process)d] %(levelname)s %(name)s%(request)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        current = _current_request_id(record)
        record.request = f" [{current}]" if current else ""
        text = super().format(record)
        fields = " ".join(f"{name}={getattr(record, name)}" for name in ACCESS_FIELDS if hasattr(record, name))
        return f"{text} {fields}" if fields else text


FORMATTERS = {"json": JsonFormatter, "text": TextFormatter}


def dict_config(settings: Settings, server_loggers: tuple[str, ...]) -> dict[str, Any]:
    """A logging.config.dictConfig: one handler on the root logger, on stderr (the container's log),
    at LOG_LEVEL, and `server_loggers` emptied of handlers of their own so that they reach it."""
    loggers: dict[str, dict[str, Any]] = {name: {"handlers": [], "propagate": True} for name in server_loggers}
    loggers[ACCESS_LOGGER] = {"level": "INFO" if settings.access_log else "WARNING"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"line": {"()": f"{__name__}.{FORMATTERS[settings.log_format].__name__}"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "line", "stream": "ext://sys.stderr"}},
        "root": {"handlers": ["stderr"], "level": settings.log_level.upper()},
        "loggers": loggers,
    }
