# JSON-lines logging (observability.md): ts, level, service, msg, trace/span/request ids from
# the request context, then event fields; uvicorn's own loggers are routed through it too.
from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson

from gateway.context import current

SERVICE = "gateway"
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING}
_LEVELS["error"] = logging.ERROR
_NAMES = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn"}
_NAMES |= {logging.ERROR: "error", logging.CRITICAL: "error"}
# color_message: uvicorn's ANSI-coloured duplicate of msg.
_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "color_message",
}


def _ts(created: float) -> str:
    secs = int(created)
    millis = int((created - secs) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{millis:03d}Z"


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object; extra={} fields become top-level keys."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": _ts(record.created),
            "level": _NAMES.get(record.levelno, "info"),
            "service": SERVICE,
            "msg": record.getMessage(),
        }
        if record.name.startswith("uvicorn"):
            # uvicorn writes sentences; keep msg a short event name and the sentence as data.
            out["msg"] = "server"
            out["detail"] = record.getMessage()
        ctx = current()
        if ctx is not None:
            out["trace_id"] = ctx.trace_id
            out["span_id"] = ctx.span_id
            out["request_id"] = ctx.request_id
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                out[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            out["error"] = repr(record.exc_info[1])
            out["stack"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


def setup_logging(level: str) -> None:
    """Installs the JSON handler on the root logger; uvicorn's loggers propagate to it."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS[level])
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
    # uvicorn's access log would duplicate ours (and log /health), so it stays off.
    logging.getLogger("uvicorn.access").disabled = True


log = logging.getLogger("gateway")
