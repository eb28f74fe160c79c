"""The ``/ws`` event stream as a resumable async iterator."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from types import TracebackType
from typing import TYPE_CHECKING

import pydantic
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.typing import Subprotocol

from bookings_client._core import USER_AGENT, websocket_url
from bookings_client.errors import APIConnectionError, AuthenticationError, InvalidArgumentError, ServerError
from bookings_client.models import Event, Problem, StreamReady

if TYPE_CHECKING:
    from bookings_client._async import AsyncBookingsClient

log = logging.getLogger("bookings_client.events")


class _RedactBearer(logging.Filter):
    """The websockets library logs every handshake header at DEBUG: the ``bearer.<token>`` subprotocol included."""

    _BEARER = re.compile(r"(bearer\.)[^\s,]+")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "bearer." in message:
            record.msg, record.args = self._BEARER.sub(r"\1[redacted]", message), None
        return True


# The websockets library's log of the stream's connections (instead of its own "websockets.client"), token redacted.
_socket_log = logging.getLogger("bookings_client.events.websockets")
_socket_log.addFilter(_RedactBearer())

CLOSE_UNAUTHORIZED = 4401
CLOSE_BAD_REQUEST = 4400
# 4401 right after a refresh means the fresh token is refused too: give up rather than loop.
MAX_UNAUTHORIZED_IN_A_ROW = 2
REFUSED_AT_ONCE_SECONDS = 5.0
SUBPROTOCOL = Subprotocol("bookings.v1")


def _subprotocols(token: str) -> list[Subprotocol]:
    """What the stream offers in ``Sec-WebSocket-Protocol``: ``bookings.v1``, which the server selects, and the
    access token as ``bearer.<token>``, which it reads and never selects (the token stays out of the URL)."""
    return [SUBPROTOCOL, Subprotocol(f"bearer.{token}")]


class _Closed(Exception):
    """Put in the queue when the stream is closed, to wake a reader."""


class EventStream:
    """``async with client.events() as stream: async for event in stream: ...``

    Entering the ``async with`` block connects in the background at once (:attr:`connected` is set while it is
    subscribed) and leaving it closes the stream; a bare ``async for`` works too, connecting on the first iteration, but
    then close it with :meth:`aclose` (``client.close()`` also closes every stream it opened).

    :attr:`last_id` is the id of the last event handed out: keep it to resume later with ``events(since=last_id)``.
    """

    def __init__(self, client: AsyncBookingsClient, since: int | None, *, buffer: int = 1000) -> None:
        if since is not None and (isinstance(since, bool) or not isinstance(since, int) or since < 0):
            raise InvalidArgumentError(f"since must be a non-negative int, got {since!r}")
        self._client = client
        self.last_id: int | None = since
        self._received_id: int | None = since  # the last id queued: where a reconnection resumes
        self._queue: asyncio.Queue[Event | BaseException] = asyncio.Queue(maxsize=buffer)
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.connected = asyncio.Event()
        """Set while the stream is subscribed (the server's ``stream.ready`` arrived); cleared when it drops."""
        self.reconnects = 0

    def _start(self) -> None:
        if self._task is None and not self._closed:
            self._task = asyncio.create_task(self._pump(), name="bookings-client-events")
            self._client._streams.add(self)

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Event:
        if self._closed and self._queue.empty():
            raise StopAsyncIteration
        self._start()
        item = await self._queue.get()
        if isinstance(item, _Closed):
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            self._closed = True
            raise item
        self.last_id = item.id
        return item

    async def aclose(self) -> None:
        self._closed = True
        self._client._streams.discard(self)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(_Closed())

    async def __aenter__(self) -> EventStream:
        self._start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _pump(self) -> None:
        try:
            await self._run()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # handed to the reader, after the events before it
            await self._queue.put(error)

    def _url(self) -> str:
        url = websocket_url(self._client.base_url)
        return url if self._received_id is None else f"{url}?since={self._received_id}"

    async def _run(self) -> None:
        retry = self._client.retry
        open_timeout = self._client._timeout if isinstance(self._client._timeout, int | float) else 10.0
        attempt = 0
        unauthorized = 0
        force_refresh = False
        opened_at = 0.0
        while True:
            try:
                token = await self._client._stream_token(force=force_refresh)
            except (APIConnectionError, ServerError) as error:  # the service is down: the refresh can wait
                log.info("event stream cannot renew its token (%s); retrying", error)
                await asyncio.sleep(retry.delay(attempt))
                attempt += 1
                continue
            force_refresh = False
            try:
                async with connect(
                    self._url(),
                    subprotocols=_subprotocols(token),
                    user_agent_header=USER_AGENT,
                    open_timeout=open_timeout,
                    logger=_socket_log,
                ) as socket:
                    opened_at = time.monotonic()
                    attempt = 0
                    async for raw in socket:
                        event = self._decode(raw)
                        if event is None:
                            continue
                        self.connected.set()  # (also for a server that sends no stream.ready)
                        if self._received_id is not None and event.id <= self._received_id:
                            continue  # at-least-once delivery: already had it
                        self._received_id = event.id
                        await self._queue.put(event)
                # A clean close (1000/1001: the server is going away): reconnect like after any other drop.
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd is not None else None
                if code == CLOSE_UNAUTHORIZED:
                    # The token expired on an open stream (normal), or a fresh token was refused at once (not).
                    unauthorized = unauthorized + 1 if time.monotonic() - opened_at < REFUSED_AT_ONCE_SECONDS else 1
                    if unauthorized > MAX_UNAUTHORIZED_IN_A_ROW:
                        problem = Problem(title="Not authenticated", status=401, detail="the event stream refused")
                        raise AuthenticationError(problem) from closed
                    force_refresh = True
                    self.connected.clear()
                    continue  # at once, with a fresh token
                if code == CLOSE_BAD_REQUEST:
                    raise InvalidArgumentError(f"the server refused since={self._received_id}: {closed}") from closed
                log.info("event stream dropped (%s); reconnecting", closed)
            except (OSError, TimeoutError, InvalidHandshake) as error:
                log.info("event stream unavailable (%s: %s); retrying", type(error).__name__, error)
            finally:
                self.connected.clear()
            await asyncio.sleep(retry.delay(attempt))
            attempt += 1
            self.reconnects += 1

    def _decode(self, raw: str | bytes) -> Event | None:
        """The event in ``raw``, or None for a message that is not one (noting where the stream stands)."""
        with contextlib.suppress(pydantic.ValidationError):
            return Event.model_validate_json(raw)
        with contextlib.suppress(pydantic.ValidationError):
            ready = StreamReady.model_validate_json(raw)
            # Where the stream starts: a drop before the first event resumes from here, not from "now".
            if self._received_id is None:
                self._received_id = ready.last_id
            self.connected.set()  # subscribed: every event after ready.last_id will come
            return None
        # A message this version does not know (a new event type?): skip it, but never go back before its id.
        try:
            message = json.loads(raw)
            event_id = message.get("id") if isinstance(message, dict) else None
        except ValueError:
            event_id = None
        if isinstance(event_id, int) and (self._received_id is None or event_id > self._received_id):
            self._received_id = event_id
        log.warning("skipped an event stream message this client does not understand: %.200r", raw)
        return None
