"""A WebSocket test client on the real ``/ws`` endpoint, collecting events as they arrive."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.typing import Subprotocol

# How an EventClient presents its token: "query" (``?token=``, the compatible default), "subprotocol"
# (``Sec-WebSocket-Protocol: bookings.v1, bearer.<token>``, the preferred way) or "header" (``Authorization``).
Auth = Literal["query", "subprotocol", "header"]


@dataclass
class EventClient:
    url: str
    token: str
    since: int | None = None
    auth: Auth = "query"
    events: list[dict[str, Any]] = field(default_factory=list)
    ready: dict[str, Any] | None = None  # the first message, ``{"event": "stream.ready", "lastId": N}``
    close_code: int | None = None
    _conn: ClientConnection | None = None
    _reader: asyncio.Task[None] | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def __aenter__(self) -> EventClient:
        params = {"token": self.token} if self.auth == "query" else {}
        if self.since is not None:
            params["since"] = str(self.since)
        query = ("?" + "&".join(f"{k}={v}" for k, v in params.items())) if params else ""
        subprotocols = [Subprotocol("bookings.v1"), Subprotocol(f"bearer.{self.token}")]
        self._conn = await websockets.connect(
            self.url.replace("http://", "ws://") + "/ws" + query,
            subprotocols=subprotocols if self.auth == "subprotocol" else None,
            additional_headers={"Authorization": f"Bearer {self.token}"} if self.auth == "header" else None,
        )
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self._conn is not None
        try:
            async for raw in self._conn:
                message = json.loads(raw)
                if message.get("event") == "stream.ready" and self.ready is None and not self.events:
                    self.ready = message
                else:  # anything else, a stream.ready out of place included, is an event to the tests
                    self.events.append(message)
                self._arrived.set()
        except websockets.ConnectionClosed:
            pass
        self.close_code = self._conn.close_code

    async def __aexit__(self, *exc: object) -> None:
        if self._conn is not None:
            await self._conn.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def wait_for(self, count: int, within: float = 5.0) -> list[dict[str, Any]]:
        """Wait until ``count`` events have arrived (or fail after ``within`` seconds)."""
        async with asyncio.timeout(within):
            while True:
                self._arrived.clear()
                if len(self.events) >= count:
                    return self.events
                await self._arrived.wait()

    async def started(self, within: float = 5.0) -> int:
        """Wait for the stream's ``stream.ready`` (the socket is subscribed); returns its ``lastId``."""
        async with asyncio.timeout(within):
            while self.ready is None:
                self._arrived.clear()
                await self._arrived.wait()
        return int(self.ready["lastId"])

    async def closed(self, within: float = 5.0) -> int | None:
        assert self._reader is not None
        async with asyncio.timeout(within):
            await self._reader
        return self.close_code

    @property
    def connection(self) -> ClientConnection:
        """The socket: its ``subprotocol`` is the one the server selected, ``response`` its handshake answer."""
        assert self._conn is not None
        return self._conn

    def ids(self) -> list[int]:
        return [e["id"] for e in self.events]
