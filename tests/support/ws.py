"""A WebSocket test client on the real ``/ws`` endpoint, collecting events as they arrive."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection


@dataclass
class EventClient:
    url: str
    token: str
    since: int | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    ready: dict[str, Any] | None = None  # the first message, ``{"event": "stream.ready", "lastId": N}``
    close_code: int | None = None
    _conn: ClientConnection | None = None
    _reader: asyncio.Task[None] | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def __aenter__(self) -> EventClient:
        query = f"?token={self.token}" + (f"&since={self.since}" if self.since is not None else "")
        self._conn = await websockets.connect(self.url.replace("http://", "ws://") + "/ws" + query)
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

    def ids(self) -> list[int]:
        return [e["id"] for e in self.events]
