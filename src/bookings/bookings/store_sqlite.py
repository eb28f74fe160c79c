"""The request path on SQLite: SQLAlchemy Core reads, and a create inside the ``BEGIN IMMEDIATE`` transaction."""

from __future__ import annotations

import uuid

from sqlalchemy.exc import DBAPIError

from bookings.bookings import history, repository
from bookings.bookings.models import Booking
from bookings.bookings.policy import VisibleBookings
from bookings.bookings.schemas import BookingOut
from bookings.bookings.store import (
    BookingPage,
    ListQuery,
    NewBooking,
    is_overlap,
    refuse,
    slot_taken,
    unknown_provider,
)
from bookings.db import Database
from bookings.events.outbox import Outbox
from bookings.events.schemas import EventType
from bookings.idempotency import repository as idempotency
from bookings.idempotency.keys import Outcome
from bookings.jobs.queue import JobQueue
from bookings.users import repository as users
from bookings.users.models import Role


class SqliteBookingStore:
    def __init__(self, db: Database, outbox: Outbox, jobs: JobQueue) -> None:
        self._db = db
        self._outbox = outbox
        self._jobs = jobs

    async def create(self, new: NewBooking) -> Outcome | None:
        b = new.booking
        async with self._db.write_sessions() as session, session.begin():
            if new.key is not None and (prior := await idempotency.claim(session, new.key)) is not None:
                return prior
            if await users.role_of(session, b.provider_id) is not Role.PROVIDER:
                raise unknown_provider()
            refuse(await repository.verdict(session, b.provider_id, new.guard))
            session.add(Booking(**b.model_dump(), blocked_start=new.blocked_start, blocked_end=new.blocked_end))
            try:
                await session.flush()
            except DBAPIError as exc:
                if is_overlap(exc.orig):
                    raise slot_taken() from exc
                raise
            self._outbox.record(session, EventType(new.event), new.snapshot, actor_id=new.actor_id, now=new.now)
            self._jobs.schedule(session, new.reminder, now=new.now)
            history.record(session, b.id, new.revision)
            if new.key is not None:
                idempotency.remember(session, new.key, new.outcome, new.now)
        return None

    async def find(self, visible: VisibleBookings, booking_id: uuid.UUID) -> BookingOut | None:
        async with self._db.reader.connect() as connection:
            row = await repository.find(connection, visible, booking_id)
        return None if row is None else BookingOut.model_validate(row)

    async def page(self, visible: VisibleBookings, query: ListQuery) -> BookingPage:
        async with self._db.reader.connect() as connection:
            rows, total, changes_at = await repository.list_visible(connection, visible, query)
        return BookingPage([BookingOut.model_validate(row) for row in rows], total, changes_at)

    async def close(self) -> None:
        return None
