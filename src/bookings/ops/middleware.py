"""The outermost layer of every HTTP request: request id, access log line, request metrics.

Plain ASGI rather than ``BaseHTTPMiddleware``: it adds no task or copy per request.
"""

from __future__ import annotations

import itertools
import re
import time
import uuid
from typing import Any

import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bookings.errors import PayloadTooLarge, error_response
from bookings.ops.metrics import Metrics

REQUEST_ID_HEADER = "x-request-id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


# A fresh request id is this process's random prefix and a counter: unique like a UUID, without a system call.
_ID_PREFIX = uuid.uuid4().hex[:20]
_ID_COUNTER = itertools.count()


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate: str = value.decode("latin-1")
            if _VALID_REQUEST_ID.match(candidate):
                return candidate
    return f"{_ID_PREFIX}{next(_ID_COUNTER) & 0xFFFFFFFFFFFF:012x}"


def _declared_length(scope: Scope) -> int:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else 0
    return 0


class RequestContextMiddleware:
    """Also caps the request body: a ``Content-Length`` over the cap is refused before reading, and a streamed
    body is counted as it arrives. Both end as the same 413 problem document."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        # Bound once, after logging is configured: the module-level lazy proxy resolves itself on every call.
        self.log = structlog.get_logger("bookings.access").bind()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        received = 0

        async def capped_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body_bytes:
                # An HTTPException, because FastAPI turns any other error raised while reading a body into a 400.
                raise HTTPException(413, f"The body is larger than {self.max_body_bytes} bytes.")
            return message

        try:
            if _declared_length(scope) > self.max_body_bytes:
                error = PayloadTooLarge(f"The body is larger than {self.max_body_bytes} bytes.")
                await error_response(Request(scope), error)(scope, receive, send_with_id)
            else:
                await self.app(scope, capped_receive, send_with_id)
        finally:
            self._record(scope, state, request_id, status, time.perf_counter() - started)

    def _record(self, scope: Scope, state: dict[str, Any], request_id: str, status: int, elapsed: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "<unmatched>"
        method = scope["method"]
        self.metrics.requests.labels(method, template, str(status)).inc()
        self.metrics.latency.labels(method, template).observe(elapsed)
        self.log.info(
            "request",
            request_id=request_id,
            method=method,
            route=template,
            # A route whose path holds a credential (a calendar feed's secret) is logged by its template.
            path=template if "{secret}" in template else scope["path"],
            status=status,
            duration_ms=round(elapsed * 1000, 2),
            user_id=state.get("user_id"),
        )
