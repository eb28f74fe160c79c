"""The bus that carries published events to every API instance's WebSocket hub.

Two implementations, chosen once by ``bus_from_settings``:

- ``MemoryBus`` (embedded mode): the relay and the hub share one process.
- ``RedisStreamBus`` (distributed mode): a Redis Stream whose entry ids are the event ids, so publishing the
  same event twice (a relay that crashed after publishing but before recording it) is refused by Redis itself,
  and every instance reads the stream from where it last was, across reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError, ResponseError

from bookings.config import Settings
from bookings.events.schemas import Envelope

log = structlog.get_logger("bookings.bus")

STREAM_MAX_LEN = 100_000  # live delivery only; the database keeps the history clients replay from


class EventBus(Protocol):
    async def publish(self, events: list[Envelope]) -> None:
        """Publish in order. Raises if the bus is unreachable; nothing is lost, the relay retries."""

    def subscribe(self) -> AsyncIterator[Envelope]:
        """Every event published from now on, by any instance, in id order."""

    def watch(self, *, interrupted: Callable[[], None], resumed: Callable[[], None]) -> None:
        """Be told when reading the bus fails (events may be missed) and when it reads again."""

    async def close(self) -> None: ...


class MemoryBus:
    def __init__(self) -> None:
        self._subscribers: set[asyncio.Queue[Envelope]] = set()

    async def publish(self, events: list[Envelope]) -> None:
        for queue in self._subscribers:
            for event in events:
                queue.put_nowait(event)

    async def subscribe(self) -> AsyncIterator[Envelope]:
        queue: asyncio.Queue[Envelope] = asyncio.Queue()
        self._subscribers.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._subscribers.discard(queue)

    def watch(self, *, interrupted: Callable[[], None], resumed: Callable[[], None]) -> None:
        return None  # in-process: never interrupted

    async def close(self) -> None:
        return None


class RedisStreamBus:
    def __init__(self, url: str, *, prefix: str, block_ms: int = 5_000, retry_seconds: float = 0.5) -> None:
        # The socket timeout must outlast a blocking XREAD: otherwise every quiet stream reads as a failure.
        self._redis = aioredis.from_url(
            url, socket_connect_timeout=2, socket_timeout=block_ms / 1000 + 5, health_check_interval=10
        )
        self._stream = f"{prefix}:events"
        self._block_ms = block_ms
        self._retry = retry_seconds
        self._watchers: list[tuple[Callable[[], None], Callable[[], None]]] = []

    def watch(self, *, interrupted: Callable[[], None], resumed: Callable[[], None]) -> None:
        self._watchers.append((interrupted, resumed))

    async def publish(self, events: list[Envelope]) -> None:
        """One round trip for the whole batch (a pipeline, not a transaction: each entry stands alone)."""
        pipe = self._redis.pipeline(transaction=False)
        for event in events:
            pipe.xadd(
                self._stream,
                {"e": event.model_dump_json()},
                id=f"{event.id}-0",
                maxlen=STREAM_MAX_LEN,
                approximate=True,
            )
        for outcome in await pipe.execute(raise_on_error=False):
            # "equal or smaller": already on the stream, published before a crash kept it from being recorded.
            if isinstance(outcome, Exception) and not (
                isinstance(outcome, ResponseError) and "equal or smaller" in str(outcome)
            ):
                raise outcome

    async def subscribe(self) -> AsyncIterator[Envelope]:
        last: str | None = None
        interrupted = False
        while True:
            try:
                if last is None:
                    newest: Any = await self._redis.xrevrange(self._stream, count=1)
                    last = newest[0][0].decode() if newest else "0-0"
                batches: Any = await self._redis.xread({self._stream: last}, block=self._block_ms, count=500)
            except (RedisError, OSError) as exc:
                log.warning("bus_unavailable", error=type(exc).__name__)
                if not interrupted:
                    interrupted = True
                    for on_interrupted, _ in self._watchers:
                        on_interrupted()
                await asyncio.sleep(self._retry)
                continue
            if interrupted:
                interrupted = False
                for _, on_resumed in self._watchers:
                    on_resumed()
            for _stream, entries in batches or []:
                for entry_id, fields in entries:
                    last = entry_id.decode()
                    yield Envelope.model_validate_json(fields[b"e"])

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._redis.aclose()


def bus_from_settings(settings: Settings) -> EventBus:
    if settings.redis_url:
        return RedisStreamBus(settings.redis_url, prefix=settings.redis_prefix)
    return MemoryBus()
