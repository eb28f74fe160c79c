"""Structured logs: one JSON object per line, request context attached, secrets scrubbed."""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import MutableMapping
from typing import Any

import structlog
from pydantic_core import to_json

# Keys whose values never reach a log line, whatever a caller passes.
SECRET_KEYS = frozenset({"password", "token", "access_token", "refresh_token", "authorization", "secret"})


# A credential in a URL's query string (``/ws?token=``, still accepted), as other loggers print it.
_QUERY_SECRET = re.compile(r"(?i)([?&](?:token|access_token|refresh_token|ticket|secret)=)[^&\s\"']+")
# The access token of a ``/ws`` handshake in ``Sec-WebSocket-Protocol`` (``bookings.v1, bearer.<token>``), and an
# ``Authorization`` header's credentials: the websockets library prints every handshake header at DEBUG.
_SUBPROTOCOL_SECRET = re.compile(r"(?i)(\bbearer\.)[^\s,;\"']+")
_HEADER_SECRET = re.compile(r"(?i)(\b(?:proxy-)?authorization:\s*)[^\r\n]+")
# A calendar feed's secret, the whole credential of its URL (``/v1/calendar-feeds/<secret>.ics``).
_FEED_SECRET = re.compile(r"(/calendar-feeds/)[^/\s\"'?]+?(\.ics\b)")
# Anything else shaped like a JWT (``eyJ…`` header, payload, signature), wherever a message quotes one.
_JWT = re.compile(r"\beyJ[\w-]*\.[\w-]+\.[\w-]*")


def redact(message: str) -> str:
    """``message`` with every credential this service knows the shape of replaced by ``[redacted]``."""
    message = _QUERY_SECRET.sub(r"\1[redacted]", message)
    message = _SUBPROTOCOL_SECRET.sub(r"\1[redacted]", message)
    message = _HEADER_SECRET.sub(r"\1[redacted]", message)
    message = _FEED_SECRET.sub(r"\1[redacted]\2", message)
    return _JWT.sub("[redacted]", message)


def _scrub_secrets(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in event.keys() & SECRET_KEYS:
        event[key] = "[redacted]"
    return event


class _UTCTimestamp:
    """``timestamp`` as ISO 8601 UTC with microseconds (``2030-01-01T12:00:00.000001Z``), the format of structlog's
    ``TimeStamper(fmt="iso", utc=True)`` at a fraction of its cost: the seconds are formatted once per second."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, _logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second, self._prefix = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        event["timestamp"] = f"{self._prefix}.{int((now - second) * 1_000_000):06d}Z"
        return event


class _StructlogHandler(logging.Handler):
    """Hands the records of the standard library's loggers (uvicorn's among them) to structlog, so that they come
    out as the same JSON lines, through the same scrubbing, with a credential in a logged URL or header redacted."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = redact(record.getMessage())
            extra: dict[str, Any] = {"logger": record.name}
            if record.exc_info:
                extra["exc_info"] = record.exc_info
            structlog.get_logger(record.name).log(record.levelno, message, **extra)
        except Exception:
            self.handleError(record)


def _json(event: Any, **_kw: Any) -> bytes:
    return to_json(event, fallback=repr)


def configure_logging(level: str = "INFO", *, json: bool = True) -> None:
    # Every request writes one line, so the line is cheap: JSON from pydantic-core, written as bytes.
    renderer: Any = structlog.processors.JSONRenderer(serializer=_json) if json else structlog.dev.ConsoleRenderer()
    factory: Any = structlog.BytesLoggerFactory(sys.stdout.buffer) if json else structlog.PrintLoggerFactory(sys.stdout)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            _UTCTimestamp(),
            _scrub_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    # Every other logger goes through the same pipeline; uvicorn's propagate to the root instead of printing.
    handler = _StructlogHandler()
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.asgi"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    # Our middleware writes the access log; uvicorn's own would repeat it without the request id.
    logging.getLogger("uvicorn.access").disabled = True
