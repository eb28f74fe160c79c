"""An admin WebSocket on one instance, kept open for the whole run: it reconnects with ``?since=<last id>``
whenever the socket drops (its instance killed, a 1013 or 4408 close), and keeps every message it receives.

It presents its token the preferred way, as the subprotocols ``bookings.v1`` and ``bearer.<access token>``: the
token stays out of the URL."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import websockets
from websockets.typing import Subprotocol

RETRY_SECONDS = 0.25


@dataclass
class Connection:
    since: int
    ids: list[int] = field(default_factory=list)
    close_code: int | None = None

    def gaps(self) -> int:
        """Places where an id did not follow the one before it (this connection's first follows ``since``)."""
        previous = [self.since, *self.ids[:-1]]
        return sum(1 for before, after in zip(previous, self.ids, strict=True) if after != before + 1)


@dataclass
class AdminListener:
    instance: str
    url: str
    token: str
    events: dict[int, dict[str, Any]] = field(default_factory=dict)  # the first copy of each id
    received: int = 0
    differing_copies: int = 0  # a second copy of an id that is not the same message
    connections: list[Connection] = field(default_factory=list)
    failed_connects: int = 0
    last_id: int = 0

    async def run(self) -> None:
        """Listen until cancelled."""
        while True:
            url = self.url.replace("http://", "ws://") + f"/ws?since={self.last_id}"
            connection = Connection(since=self.last_id)
            try:
                async with websockets.connect(url, subprotocols=self._subprotocols()) as socket:
                    self.connections.append(connection)
                    async for raw in socket:
                        self._take(connection, json.loads(raw))
                    connection.close_code = socket.close_code
            except websockets.ConnectionClosed as closed:
                connection.close_code = closed.rcvd.code if closed.rcvd else 1006
            except (OSError, TimeoutError, websockets.InvalidHandshake):
                self.failed_connects += 1
            await asyncio.sleep(RETRY_SECONDS)

    def _subprotocols(self) -> list[Subprotocol]:
        """What ``/ws`` authenticates by: the server selects ``bookings.v1``, the ``bearer.`` entry is the token."""
        return [Subprotocol("bookings.v1"), Subprotocol(f"bearer.{self.token}")]

    def _take(self, connection: Connection, message: dict[str, Any]) -> None:
        if message.get("event") == "stream.ready":
            return
        event_id = int(message["id"])
        self.received += 1
        connection.ids.append(event_id)
        if event_id in self.events:
            self.differing_copies += self.events[event_id] != message
        else:
            self.events[event_id] = message
        self.last_id = event_id

    def close_codes(self) -> Counter[int | None]:
        return Counter(connection.close_code for connection in self.connections)
