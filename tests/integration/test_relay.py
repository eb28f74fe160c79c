"""The relay on a real database: ids follow commit order, publication resumes from the bookmark, old events go."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from bookings.db import Database
from bookings.events.bus import MemoryBus
from bookings.events.coordination import LocalCoordinator
from bookings.events.models import Event
from bookings.events.relay import Relay
from bookings.events.schemas import Envelope
from bookings.ops.metrics import Metrics
from tests.support.clock import SettableClock

NOW = datetime(2031, 6, 1, 12, tzinfo=UTC)


class FlakyBus(MemoryBus):
    """A bus that can be made to fail, as Redis does when it is down."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.published: list[Envelope] = []

    async def publish(self, events: list[Envelope]) -> None:
        if self.down:
            raise ConnectionError("bus down")
        self.published.extend(events)


async def _add_events(db: Database, count: int, at: datetime) -> None:
    async with db.write_sessions() as session, session.begin():
        for _ in range(count):
            session.add(
                Event(
                    type="booking.created",
                    booking_id=uuid.uuid4(),
                    user_id=uuid.uuid4(),
                    provider_id=uuid.uuid4(),
                    data={},
                    occurred_at=at,
                )
            )


class TestRelay:
    async def test_numbers_and_publishes_in_order_and_resumes_after_the_bus_recovers(self, db: Database) -> None:
        bus, clock = FlakyBus(), SettableClock(NOW)
        relay = Relay(db, bus, LocalCoordinator(), Metrics(), clock, poll_seconds=0.01)
        await _add_events(db, 3, NOW)
        assert await relay.relay_once() == 3
        bus.down = True
        await _add_events(db, 2, NOW)
        assert await relay.relay_once() == 0
        bus.down = False
        assert await relay.relay_once() == 2
        assert [e.id for e in bus.published] == [1, 2, 3, 4, 5]

    async def test_a_new_relay_continues_from_the_bookmark(self, db: Database) -> None:
        first, second = FlakyBus(), FlakyBus()
        await _add_events(db, 2, NOW)
        await Relay(db, first, LocalCoordinator(), Metrics(), SettableClock(NOW)).relay_once()
        await _add_events(db, 1, NOW)
        await Relay(db, second, LocalCoordinator(), Metrics(), SettableClock(NOW)).relay_once()
        assert [e.id for e in second.published] == [3]

    async def test_prunes_published_events_past_retention_without_reusing_ids(self, db: Database) -> None:
        bus, clock = FlakyBus(), SettableClock(NOW)
        relay = Relay(db, bus, LocalCoordinator(), Metrics(), clock, retention=timedelta(days=7))
        await _add_events(db, 4, NOW - timedelta(days=8))
        await _add_events(db, 1, NOW - timedelta(days=1))
        await relay.relay_once()
        await relay._prune()
        async with db.read_sessions() as session:
            assert await session.scalar(select(func.count()).select_from(Event)) == 1
        clock.now += timedelta(days=7)
        relay._last_prune = None
        await relay._prune()  # now every event is old: the table is empty, and ids must still not restart
        async with db.read_sessions() as session:
            assert await session.scalar(select(func.count()).select_from(Event)) == 0
        await _add_events(db, 1, NOW)
        await relay.relay_once()
        assert bus.published[-1].id == 6
