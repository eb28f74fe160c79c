"""Where the request path creates and reads bookings: one implementation per database, chosen once.

- ``PostgresBookingStore`` (``store_postgres``): each operation is one statement on an asyncpg pool, in autocommit.
  A create is one ``INSERT`` whose common table expressions also write its event and its reminder: one round
  trip, one transaction, no ORM unit of work.
- ``SqliteBookingStore`` (``store_sqlite``): the same operations through SQLAlchemy, a create inside the
  ``BEGIN IMMEDIATE`` write transaction that serialises it against every other writer.

Changes to an existing booking (reschedule, cancel) lock the ORM object in their write session instead
(``BookingService.update``/``cancel``): they are rarer, and they read before they write.
"""

from __future__ import annotations

import enum
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from bookings.availability.errors import daily_limit_reached
from bookings.bookings.history import Revision
from bookings.bookings.policy import VisibleBookings
from bookings.bookings.schemas import BookingOut, BookingWindow
from bookings.config import Settings
from bookings.db import Database
from bookings.errors import InvalidInput, SlotTaken
from bookings.events.outbox import Outbox
from bookings.idempotency.keys import IdempotencyKey, Outcome
from bookings.jobs.queue import JobQueue, NewJob
from bookings.kit.pagination import PageRequest

# PostgreSQL: exclusion_violation, and deadlock_detected, which two writes of overlapping slots could meet while
# each waits to see whether the other commits (the database aborts one of them, but only after deadlock_timeout).
# The provider lock below keeps them from meeting; the code stays as a safety net.
CONFLICT_SQLSTATES = frozenset({"23P01", "40P01"})
# PostgreSQL: every write that gives a provider a new slot (create, reschedule) first takes the provider's
# transaction advisory lock (``kit.locks``). Two such writes for one provider then run one after the other, and the
# second meets the first's committed row in the exclusion constraint and fails at once, instead of both waiting on
# each other's uncommitted row until the deadlock detector (1 s) picks a loser.
OVERLAP_TRIGGER_MESSAGE = "booking_overlap"  # raised by SQLite's overlap trigger (see the initial migration)

SLOT_TAKEN = "The provider already has a booking that overlaps this time."


def is_overlap(error: BaseException | None) -> bool:
    """Whether a driver's error is the database refusing an overlapping booking (either engine)."""
    if error is None:
        return False
    return getattr(error, "sqlstate", None) in CONFLICT_SQLSTATES or OVERLAP_TRIGGER_MESSAGE in str(error)


class Verdict(enum.StrEnum):
    """What the write decided, under the provider's lock, about a slot checked against a schedule version."""

    OK = "ok"
    SCHEDULE_CHANGED = "schedule_changed"
    DAILY_LIMIT = "daily_limit"


class ScheduleChanged(Exception):
    """The provider's schedule changed since the slot was checked against it: check again, then write again."""


def refuse(verdict: Verdict) -> None:
    if verdict is Verdict.SCHEDULE_CHANGED:
        raise ScheduleChanged
    if verdict is Verdict.DAILY_LIMIT:
        raise daily_limit_reached()


@dataclass(frozen=True, slots=True)
class SlotGuard:
    """What the write checks under the provider's lock: the schedule is still ``version`` (``None``: there is
    none), and the provider's local day ``[day_start, day_end)`` has fewer than ``limit`` confirmed bookings."""

    version: int | None = None
    limit: int | None = None
    day_start: datetime | None = None
    day_end: datetime | None = None


_NAMED = re.compile(r"@([a-z_]+)")


def numbered(sql: str) -> tuple[str, tuple[str, ...]]:
    """``@name`` placeholders to asyncpg's ``$n``, and the names in their order (each name one parameter)."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    return _NAMED.sub(number, sql), tuple(names)


def slot_taken() -> SlotTaken:
    return SlotTaken(SLOT_TAKEN)


def unknown_provider() -> InvalidInput:
    return InvalidInput.on("providerId", "No provider has this id.", "unknown_provider")


@dataclass(frozen=True, slots=True)
class NewBooking:
    """Everything one create writes, in one transaction: the booking, its event and the reminder it owes, and
    with an ``Idempotency-Key`` the answer to replay for it."""

    booking: BookingOut
    snapshot: dict[str, Any]  # the booking's JSON form, as the event carries it
    event: str
    actor_id: uuid.UUID
    reminder: NewJob
    now: datetime
    outcome: Outcome
    revision: Revision
    blocked_start: datetime
    blocked_end: datetime
    guard: SlotGuard
    key: IdempotencyKey | None = None


@dataclass(frozen=True, slots=True)
class BookingPage:
    """One page of a list, its total, and the next instant at which time alone changes the answer.

    ``changes_at`` is the earliest end among the visible bookings that have not ended: when it passes, one of
    them moves from upcoming to past. ``None``: none is left to end, so only a change can alter the page.
    """

    items: list[BookingOut]  # the page, and one more if another page follows (``kit.pagination.paged``)
    total: int | None  # None when walking by cursor
    changes_at: datetime | None


@dataclass(frozen=True, slots=True)
class ListQuery:
    window: BookingWindow | None
    paging: PageRequest
    now: datetime
    longest: timedelta  # no booking lasts longer: bounds the index scan of "upcoming"


class BookingStore(Protocol):
    async def create(self, new: NewBooking) -> Outcome | None:
        """Write the booking, its event and its reminder, or nothing: raises ``SlotTaken`` when the provider is
        booked then, ``InvalidInput`` when ``providerId`` names no provider, ``DailyLimitReached`` or
        ``ScheduleChanged`` as ``guard`` finds. With a key that has an outcome already, writes nothing and returns
        that outcome to replay (``idempotency.keys.replay``)."""

    async def find(self, visible: VisibleBookings, booking_id: uuid.UUID) -> BookingOut | None: ...

    async def page(self, visible: VisibleBookings, query: ListQuery) -> BookingPage: ...

    async def close(self) -> None: ...


def store_from_settings(settings: Settings, db: Database, outbox: Outbox, jobs: JobQueue) -> BookingStore:
    # Imported here so that embedded mode never imports asyncpg, nor distributed mode the SQLite code path.
    if settings.is_sqlite:
        from bookings.bookings.store_sqlite import SqliteBookingStore

        return SqliteBookingStore(db, outbox, jobs)
    from bookings.bookings.store_postgres import PostgresBookingStore

    return PostgresBookingStore(settings, outbox, jobs)
