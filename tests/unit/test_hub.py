"""The hub's fan-out: each event reaches its booking's user, its provider and the admins, and no one else."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from bookings.auth.principal import Principal
from bookings.bookings.cache import ReadCache
from bookings.events.bus import MemoryBus
from bookings.events.hub import Hub, Subscriber
from bookings.events.schemas import Envelope
from bookings.ops.metrics import Metrics
from bookings.users.models import Role

USER, PROVIDER, OTHER_USER, OTHER_PROVIDER, ADMIN = (uuid.uuid4() for _ in range(5))


def _event(event_id: int, user: uuid.UUID = USER, provider: uuid.UUID = PROVIDER) -> Envelope:
    return Envelope(
        id=event_id,
        event="booking.created",
        data={"id": str(uuid.uuid4())},
        occurred_at=datetime(2030, 1, 1, tzinfo=UTC),
        user_id=user,
        provider_id=provider,
    )


def _hub_with(*principals: Principal, max_queued: int = 10) -> tuple[Hub, list[Subscriber], Metrics]:
    metrics = Metrics()
    hub = Hub(MemoryBus(), metrics, ReadCache(100))
    subscribers = [Subscriber(p, max_queued) for p in principals]
    for subscriber in subscribers:
        hub.add(subscriber)
    return hub, subscribers, metrics


def test_an_event_reaches_its_user_provider_and_admins_only() -> None:
    hub, subs, _ = _hub_with(
        Principal(USER, Role.USER),
        Principal(PROVIDER, Role.PROVIDER),
        Principal(OTHER_USER, Role.USER),
        Principal(OTHER_PROVIDER, Role.PROVIDER),
        Principal(ADMIN, Role.ADMIN),
    )
    hub.dispatch(_event(1))
    assert [s.queue.qsize() for s in subs] == [1, 1, 0, 0, 1]
    message = subs[0].queue.get_nowait()
    assert set(message) == {"id", "event", "data", "occurredAt"}
    assert message["occurredAt"] == "2030-01-01T00:00:00Z"


def test_every_connection_of_a_user_gets_the_event() -> None:
    hub, subs, _ = _hub_with(Principal(USER, Role.USER), Principal(USER, Role.USER))
    hub.dispatch(_event(1))
    assert [s.queue.qsize() for s in subs] == [1, 1]


def test_a_client_that_falls_behind_is_marked_and_stops_growing() -> None:
    hub, (slow,), _ = _hub_with(Principal(USER, Role.USER), max_queued=3)
    for event_id in range(1, 10):
        hub.dispatch(_event(event_id))
    assert slow.overflowed.is_set()
    assert slow.queue.qsize() == 3


def test_removed_connections_get_nothing_and_the_gauge_follows() -> None:
    hub, (sub,), metrics = _hub_with(Principal(USER, Role.USER))
    assert metrics.ws_clients._value.get() == 1
    hub.remove(sub)
    hub.dispatch(_event(1))
    assert sub.queue.qsize() == 0
    assert metrics.ws_clients._value.get() == 0


async def _run_until_idle(hub: Hub, bus: MemoryBus, *events: Envelope) -> None:
    running = asyncio.create_task(hub.run())
    await asyncio.sleep(0)  # subscribed
    await bus.publish(list(events))
    for _ in range(20):
        await asyncio.sleep(0)
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running


async def test_a_gap_in_the_bus_is_read_back_in_order_and_a_repeat_is_dropped() -> None:
    stored = {n: _event(n) for n in range(1, 8)}
    asked: list[tuple[int, int]] = []

    async def backfill(after: int, before: int) -> AsyncIterator[Envelope]:
        asked.append((after, before))
        for n in range(after + 1, before):
            yield stored[n]

    bus = MemoryBus()
    hub = Hub(bus, Metrics(), ReadCache(100), backfill)
    admin = Subscriber(Principal(ADMIN, Role.ADMIN), 100)
    hub.add(admin)
    # The bus lost 3-5 (say, Redis restarted empty) and carries 2 twice (a relay that crashed and published again).
    await _run_until_idle(hub, bus, stored[1], stored[2], stored[2], stored[6], stored[7])
    received = [admin.queue.get_nowait()["id"] for _ in range(admin.queue.qsize())]
    assert received == [1, 2, 3, 4, 5, 6, 7]
    assert asked == [(2, 6)]
    assert not admin.gap.is_set()


async def test_a_gap_that_cannot_be_read_back_makes_every_client_resume() -> None:
    async def failing(after: int, before: int) -> AsyncIterator[Envelope]:
        raise OSError("the database is down")
        yield _event(0)  # pragma: no cover (makes this an async generator)

    bus = MemoryBus()
    cache = ReadCache(100)
    hub = Hub(bus, Metrics(), cache, failing)
    subscribers = [Subscriber(Principal(USER, Role.USER), 10), Subscriber(Principal(ADMIN, Role.ADMIN), 10)]
    for subscriber in subscribers:
        hub.add(subscriber)
    cached = uuid.uuid4()
    cache.put_booking(cache.ticket(), cached, USER, PROVIDER, b"{}", '"1"')
    assert cache.booking(cached) is not None
    await _run_until_idle(hub, bus, _event(1), _event(5))
    assert all(s.gap.is_set() for s in subscribers)
    assert hub.last_id == 5
    assert cache.booking(cached) is None, "a change among the lost events may concern it"
