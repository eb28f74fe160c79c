"""This instance's WebSocket connections, and the fan-out of each event to the ones allowed to see it."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import structlog

from bookings import access
from bookings.auth.principal import Principal
from bookings.events.bus import EventBus
from bookings.events.schemas import Envelope
from bookings.ops.metrics import Metrics
from bookings.users.models import Role

log = structlog.get_logger("bookings.hub")

# The events with ``after < id < before``, read back from where they are stored (``repository.between``).
Backfill = Callable[[int, int], AsyncIterator[Envelope]]


class Subscriber:
    """One connection's bounded queue of events to send.

    A client that reads too slowly fills its queue; it is then marked ``overflowed`` and cut off (it can
    reconnect with ``?since=``), so one slow client never grows the server's memory without bound.
    """

    def __init__(self, principal: Principal, max_queued: int) -> None:
        self.principal = principal
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=max_queued)
        self.overflowed = asyncio.Event()
        self.gap = asyncio.Event()  # the hub lost events it could not read back: the client must resume

    def offer(self, message: dict[str, Any]) -> None:
        if self.overflowed.is_set():
            return
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.overflowed.set()


class Forgets(Protocol):
    """What the hub keeps current from the event stream (the bookings read cache): forgetting a changed booking,
    and stepping aside while the stream may be missing changes."""

    def forget(self, booking_id: uuid.UUID, user_id: uuid.UUID, provider_id: uuid.UUID) -> None: ...

    def suspend(self) -> None: ...

    def resume(self) -> None: ...

    def clear(self) -> None: ...


class Hub:
    def __init__(self, bus: EventBus, metrics: Metrics, cache: Forgets, backfill: Backfill | None = None) -> None:
        self._bus = bus
        self._metrics = metrics
        self._cache = cache
        self._backfill = backfill
        self.last_id: int | None = None  # the last event dispatched
        # While the bus is interrupted this instance may miss changes: the cache steps aside until it is back.
        bus.watch(interrupted=cache.suspend, resumed=cache.resume)
        self._by_user: dict[uuid.UUID, set[Subscriber]] = defaultdict(set)
        self._admins: set[Subscriber] = set()

    def add(self, subscriber: Subscriber) -> None:
        if subscriber.principal.role is Role.ADMIN:
            self._admins.add(subscriber)
        else:
            self._by_user[subscriber.principal.user_id].add(subscriber)
        self._metrics.ws_clients.inc()

    def remove(self, subscriber: Subscriber) -> None:
        if subscriber.principal.role is Role.ADMIN:
            self._admins.discard(subscriber)
        else:
            group = self._by_user.get(subscriber.principal.user_id)
            if group is not None:
                group.discard(subscriber)
                if not group:
                    del self._by_user[subscriber.principal.user_id]
        self._metrics.ws_clients.dec()

    def dispatch(self, event: Envelope) -> None:
        self._cache.forget(uuid.UUID(event.data["id"]), event.user_id, event.provider_id)
        audience = self._admins | self._by_user.get(event.user_id, set()) | self._by_user.get(event.provider_id, set())
        message = event.public()
        for subscriber in audience:
            # The index already routes by user; the policy has the last word.
            if access.audience(subscriber.principal).admits(event.user_id, event.provider_id):
                subscriber.offer(message)

    async def run(self) -> None:
        """Feed every event from the bus to this instance's connections, until cancelled.

        Event ids have no gaps, so an event more than one past the last one dispatched means that the bus lost
        some (Redis restarted empty while this instance was behind, or the stream was trimmed past it): they are
        read back from the database and dispatched first. One at or below it (published again after a relay
        crash) was dispatched already.
        """
        async for event in self._bus.subscribe():
            if self.last_id is not None:
                if event.id <= self.last_id:
                    continue
                if event.id > self.last_id + 1:
                    await self._catch_up(self.last_id, event.id)
            self._dispatch_safely(event)

    async def _catch_up(self, after: int, before: int) -> None:
        log.warning("bus_gap", after=after, before=before)
        try:
            if self._backfill is None:
                raise LookupError("no event store to read the gap back from")
            async for missed in self._backfill(after, before):
                self._dispatch_safely(missed)
        except Exception:
            # Whoever may have missed one of them must resume from their last id, and the cache may hold
            # a booking one of them changed.
            log.exception("bus_gap_not_filled", after=after, before=before)
            self._cache.clear()
            for subscriber in self._admins.union(*self._by_user.values()):
                subscriber.gap.set()

    def _dispatch_safely(self, event: Envelope) -> None:
        try:
            self.dispatch(event)
        except Exception:  # one bad event must not stop the feed
            log.exception("dispatch_failed", event_id=event.id)
        self.last_id = event.id
