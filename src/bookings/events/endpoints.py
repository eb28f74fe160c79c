"""``GET /ws``: the live event stream, resumable with ``?since=<id>``.

Authentication, preferred first:

1. The access token in ``Sec-WebSocket-Protocol``, as Kubernetes' API server takes it: the client offers two
   subprotocols, ``bookings.v1`` and ``bearer.<access token>`` (a JWT is base64url and dots, a valid subprotocol
   token), e.g. ``new WebSocket(url, ["bookings.v1", "bearer." + token])``. The server selects ``bookings.v1``,
   never the token's entry (RFC 6455: it must select one of those offered, and browsers fail a handshake that
   selects none when some were offered). The token stays out of the URL, and so out of access logs and history.
2. An ``Authorization: Bearer <token>`` header, for clients that can set one (not browsers).
3. ``?token=<token>`` in the URL: still accepted, for compatibility, but discouraged (URLs end up in proxies'
   logs and in browser history; this service redacts it from its own log lines).

A ``bearer.`` entry, when offered, is the credential (a bad one is refused, not passed over for another); without
one, ``?token=`` and then the header are looked at, as before. A client that offers ``bookings.v1`` gets it
selected whichever way it authenticates; a client that offers no subprotocol gets none.

The first message is ``{"event": "stream.ready", "lastId": N}``: every event after ``N`` follows, in id order
(``N`` is ``since`` when given, else the newest event's id). A client keeps ``N`` until its first event, so that
a drop before any event still resumes without a gap.

Close codes: 4401 no, bad or expired token (also sent when the token expires mid-stream); 4400 a malformed
``since``; 4408 the client read too slowly and its queue filled (reconnect with ``since``); 1013 the service
could not tell where the stream starts, or this instance lost events it could not read back (reconnect, with
``since`` when there is one).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime
from typing import Any

import structlog
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from bookings.auth.keyring import AccessClaims
from bookings.auth.principal import Principal
from bookings.auth.service import AuthService
from bookings.errors import NotAuthenticated
from bookings.events import repository
from bookings.events.hub import Hub, Subscriber
from bookings.events.schemas import StreamReady
from bookings.ops.metrics import Metrics

router = APIRouter()
log = structlog.get_logger("bookings.events")

CLOSE_UNAUTHORIZED = 4401
CLOSE_BAD_REQUEST = 4400
CLOSE_TOO_SLOW = 4408
# RFC 6455 "Try Again Later": the database could not be asked where the stream starts, or this instance lost
# events it could not read back (reconnect with since).
CLOSE_TRY_AGAIN = 1013


# The subprotocol the server selects, and the prefix of the one that carries the access token (never selected).
SUBPROTOCOL = "bookings.v1"
BEARER_PREFIX = "bearer."


def _offered(websocket: WebSocket) -> list[str]:
    """The subprotocols of the client's ``Sec-WebSocket-Protocol`` header, in its order (the server parses it)."""
    return list(websocket.scope.get("subprotocols") or ())


def _subprotocol(websocket: WebSocket) -> str | None:
    """``bookings.v1`` when the client offered it, else none: never the ``bearer.`` entry, which is the token."""
    return SUBPROTOCOL if SUBPROTOCOL in _offered(websocket) else None


def _token(websocket: WebSocket) -> str:
    for offered in _offered(websocket):
        if offered.startswith(BEARER_PREFIX):
            return offered.removeprefix(BEARER_PREFIX)
    if token := websocket.query_params.get("token"):
        return token
    scheme, _, credentials = websocket.headers.get("authorization", "").partition(" ")
    return credentials if scheme.lower() == "bearer" else ""


def _since(websocket: WebSocket) -> int | None:
    raw = websocket.query_params.get("since")
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise ValueError(raw)
    return int(raw)


class _Stream:
    """One connection: replay, then live events, until the client leaves, lags, or its token expires."""

    def __init__(self, websocket: WebSocket, subscriber: Subscriber, metrics: Metrics) -> None:
        self.websocket = websocket
        self.subscriber = subscriber
        self.metrics = metrics
        self.last_id = 0

    async def ready(self, last_id: int) -> None:
        self.last_id = last_id
        await self.websocket.send_text(StreamReady(last_id=last_id).model_dump_json(by_alias=True))

    async def send(self, message: dict[str, Any]) -> None:
        if message["id"] <= self.last_id:
            return  # already sent (the seam between replay and live)
        await self.websocket.send_text(json.dumps(message, separators=(",", ":")))
        self.last_id = message["id"]
        self.metrics.events_delivered.inc()

    async def live(self) -> None:
        while True:
            await self.send(await self.subscriber.queue.get())

    async def until_client_leaves(self) -> None:
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                message = await self.websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return

    async def run(self, claims: AccessClaims) -> None:
        remaining = (claims.expires_at - datetime.now(UTC)).total_seconds()
        tasks = {
            asyncio.create_task(self.live()): None,
            asyncio.create_task(self.until_client_leaves()): None,
            asyncio.create_task(self.subscriber.overflowed.wait()): (CLOSE_TOO_SLOW, "too slow; reconnect with since"),
            asyncio.create_task(self.subscriber.gap.wait()): (CLOSE_TRY_AGAIN, "events missed; reconnect with since"),
            asyncio.create_task(asyncio.sleep(max(0.0, remaining))): (CLOSE_UNAUTHORIZED, "token expired"),
        }
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        for task in done:
            close = tasks[task]
            if task.exception() is None and close is not None:
                with contextlib.suppress(Exception):
                    await self.websocket.close(code=close[0], reason=close[1])


@router.websocket("/ws")
async def stream(websocket: WebSocket) -> None:
    app = websocket.app
    auth: AuthService = app.state.auth
    hub: Hub = app.state.hub
    # Accepted before the token is checked, so that a refusal is a close code (4401) a browser can read.
    await websocket.accept(subprotocol=_subprotocol(websocket))
    try:
        claims = auth.authenticate(_token(websocket))
        since = _since(websocket)
    except NotAuthenticated:
        await websocket.close(code=CLOSE_UNAUTHORIZED, reason="unauthorized")
        return
    except ValueError:
        await websocket.close(code=CLOSE_BAD_REQUEST, reason="since must be a non-negative integer")
        return
    principal = Principal(user_id=claims.user_id, role=claims.role)
    subscriber = Subscriber(principal, app.state.settings.ws_queue_size)
    hub.add(subscriber)  # live events queue up from here, so the replay below leaves no gap
    connection = _Stream(websocket, subscriber, app.state.metrics)
    try:
        try:
            start = since if since is not None else await repository.latest_id(app.state.db)
        except Exception as exc:  # the database is unreachable: say so, rather than fail the socket with 1011
            log.warning("stream_start_unavailable", error=type(exc).__name__)
            await websocket.close(code=CLOSE_TRY_AGAIN, reason="service unavailable; reconnect later")
            return
        await connection.ready(start)
        if since is not None:
            async for event in repository.missed(app.state.db, principal, since):
                await connection.send(event.public())
        await connection.run(claims)
    except WebSocketDisconnect:
        pass
    finally:
        hub.remove(subscriber)
