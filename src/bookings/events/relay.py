"""The relay: gives committed events their public ids, in commit order, and publishes them to the bus.

One relay leads at a time (see ``coordination``). Each round it (1) numbers the events that have committed
since the last round, in one short transaction, and (2) publishes every numbered event above the bookmark in
``relay_state``, then moves the bookmark. A crash between (1) and (2), or a bus that is down, only delays
publication: the next round, here or on the instance that takes over, publishes from the bookmark.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, cast

import structlog
from sqlalchemy import Row, Table, delete, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bookings.db import Database
from bookings.events.bus import EventBus
from bookings.events.coordination import Coordinator
from bookings.events.models import Event, RelayState
from bookings.events.schemas import Envelope
from bookings.kit.time import Clock
from bookings.ops.metrics import Metrics

log = structlog.get_logger("bookings.relay")

BATCH = 500
RELAY_NAME = "bus"
# After a round that published something, the next waits this long: under a stream of commits, each round then
# takes every event of the interval at once (a few transactions per batch, not per booking), for at most this
# much more latency.
COALESCE_SECONDS = 0.005


_EVENTS = cast(Table, Event.__table__)
# Numbers up to :batch committed events in one statement, in the order they were written, above the highest id
# given so far and never below the bookmark (once old events are pruned, ids must still not start over).
NUMBER = text(
    """
WITH todo AS (
    SELECT seq, row_number() OVER (ORDER BY seq) AS n
    FROM (SELECT seq FROM events WHERE id IS NULL ORDER BY seq LIMIT :batch) AS unassigned
), top AS (
    SELECT max(v) AS id FROM (
        SELECT max(id) AS v FROM events
        UNION ALL SELECT published_through FROM relay_state WHERE name = :name
        UNION ALL SELECT 0
    ) AS highest
)
UPDATE events SET id = (SELECT id FROM top) + todo.n
FROM todo WHERE events.seq = todo.seq
RETURNING id, type, data, occurred_at, user_id, provider_id
"""
).columns(_EVENTS.c.id, _EVENTS.c.type, _EVENTS.c.data, _EVENTS.c.occurred_at, _EVENTS.c.user_id, _EVENTS.c.provider_id)


def _envelope(row: Event | Row[Any]) -> Envelope:
    """An event row (the ORM's, or the relay's numbering statement's) as it travels on the bus."""
    assert row.id is not None
    return Envelope(
        id=row.id,
        event=row.type,
        data=row.data,
        occurred_at=row.occurred_at,
        user_id=row.user_id,
        provider_id=row.provider_id,
    )


class Relay:
    def __init__(
        self,
        db: Database,
        bus: EventBus,
        coordinator: Coordinator,
        metrics: Metrics,
        clock: Clock,
        *,
        poll_seconds: float = 1.0,
        retention: timedelta = timedelta(days=7),
        on_numbered: Callable[[AsyncSession, list[Envelope]], Awaitable[None]] | None = None,
    ) -> None:
        self._db = db
        self._bus = bus
        self._coordinator = coordinator
        self._metrics = metrics
        self._clock = clock
        self._poll = poll_seconds
        self._retention = retention
        self._last_prune: datetime | None = None
        self._on_numbered = on_numbered
        self._backlog = True  # publish from the bookmark before anything new

    async def run(self) -> None:
        """Lead when allowed, and relay until cancelled."""
        while True:
            await self._coordinator.lead()
            self._backlog = True
            try:
                await self._relay_while_leading()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("relay_failed")
                await asyncio.sleep(self._poll)

    async def _relay_while_leading(self) -> None:
        checked = asyncio.get_running_loop().time()
        while True:
            if await self.relay_once():
                await asyncio.sleep(COALESCE_SECONDS)
            await self._coordinator.wait_for_events(self._poll)
            now = asyncio.get_running_loop().time()
            if now - checked >= self._poll:
                checked = now
                if not await self._coordinator.still_leading():
                    log.warning("relay_lost_lead")
                    return
                await self._prune()

    async def relay_once(self) -> int:
        """One round: number what committed, then publish it. Returns how many events were published.

        Normally the events just numbered are published straight away. After a failed publication, and when
        this relay starts leading, it first publishes everything above the bookmark, read back from the table.
        """
        published = 0
        if self._backlog:
            while batch := await self._unpublished():
                if not await self._publish(batch):
                    return published
                published += len(batch)
            self._backlog = False
        while numbered := await self._number():
            if not await self._publish(numbered):
                return published
            published += len(numbered)
        return published

    async def _publish(self, batch: list[Envelope]) -> bool:
        try:
            await self._bus.publish(batch)
        except Exception as exc:
            log.warning("bus_publish_failed", error=type(exc).__name__, pending=len(batch))
            self._backlog = True  # numbered but not published: the next round starts from the bookmark
            await asyncio.sleep(self._poll / 2)
            return False
        await self._advance(batch[-1].id)
        now = self._clock()
        for event in batch:
            self._metrics.relay_lag.observe(max(0.0, (now - event.occurred_at).total_seconds()))
        self._metrics.events_published.inc(len(batch))
        return True

    async def _number(self) -> list[Envelope]:
        async with self._db.write_sessions() as session, session.begin():
            rows = await session.execute(NUMBER, {"batch": BATCH, "name": RELAY_NAME})
            numbered = sorted(
                (_envelope(row) for row in rows),
                key=lambda event: event.id,
            )
            if numbered and self._on_numbered is not None:
                await self._on_numbered(session, numbered)  # e.g. webhook deliveries, in this same transaction
            return numbered

    async def _unpublished(self) -> list[Envelope]:
        async with self._db.read_sessions() as session:
            mark = await self._bookmark(session)
            rows = await session.scalars(
                select(Event).where(Event.id.is_not(None), Event.id > mark).order_by(Event.id).limit(BATCH)
            )
            return [_envelope(row) for row in rows]

    @staticmethod
    async def _bookmark(session: AsyncSession) -> int:
        mark = await session.scalar(select(RelayState.published_through).where(RelayState.name == RELAY_NAME))
        return mark or 0

    async def _advance(self, through: int) -> None:
        async with self._db.write_sessions() as session, session.begin():
            insert = sqlite_insert if self._db.is_sqlite else pg_insert
            stmt = insert(RelayState).values(name=RELAY_NAME, published_through=through)
            await session.execute(
                stmt.on_conflict_do_update(index_elements=["name"], set_={"published_through": through})
            )

    async def _prune(self) -> None:
        """Drop published events past retention, at most once an hour."""
        now = self._clock()
        if self._last_prune and now - self._last_prune < timedelta(hours=1):
            return
        self._last_prune = now
        async with self._db.write_sessions() as session, session.begin():
            mark = await self._bookmark(session)
            await session.execute(delete(Event).where(Event.occurred_at < now - self._retention, Event.id <= mark))

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._coordinator.close()
