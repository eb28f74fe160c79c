"""Reminders: each active booking owes one, at ``startTime - lead`` (at once if that has passed).

They are jobs: scheduled in the booking's transaction, moved when it is rescheduled, cancelled with it. When one
fires, a ``booking.reminder`` event is written to the outbox in the same transaction that marks the job done,
so it is sent exactly once per reminder however often the job runs; from there it travels like every event (to
WebSockets and webhooks).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bookings.bookings.models import Booking, BookingStatus
from bookings.bookings.schemas import BookingOut
from bookings.events.outbox import Outbox
from bookings.events.schemas import EventType
from bookings.jobs.queue import ClaimedJob, JobQueue, NewJob
from bookings.kit.time import Clock
from bookings.ops.metrics import Metrics

KIND = "reminder"
MAX_ATTEMPTS = 5


def _key(booking_id: uuid.UUID) -> str:
    return f"reminder:{booking_id}"


class Reminders:
    def __init__(self, jobs: JobQueue, outbox: Outbox, metrics: Metrics, clock: Clock, *, lead: timedelta) -> None:
        self._jobs = jobs
        self._outbox = outbox
        self._metrics = metrics
        self._clock = clock
        self._lead = lead

    def job_for(self, booking_id: uuid.UUID, start_time: datetime, now: datetime) -> NewJob:
        """The reminder a booking starting at ``start_time`` owes."""
        return NewJob(
            kind=KIND,
            payload={"bookingId": str(booking_id), "startTime": start_time.isoformat()},
            run_at=max(now, start_time - self._lead),
            max_attempts=MAX_ATTEMPTS,
            dedup_key=_key(booking_id),
        )

    def schedule(self, session: AsyncSession, booking: Booking, now: datetime) -> None:
        self._jobs.schedule(session, self.job_for(booking.id, booking.start_time, now), now=now)

    async def move(self, session: AsyncSession, booking: Booking, now: datetime) -> None:
        await self._jobs.cancel(session, _key(booking.id), now)
        self.schedule(session, booking, now)

    async def cancel(self, session: AsyncSession, booking: Booking, now: datetime) -> None:
        await self._jobs.cancel(session, _key(booking.id), now)

    async def fire(self, job: ClaimedJob, session: AsyncSession) -> None:
        """The job handler. Locks the booking, so a concurrent cancel or reschedule is seen, not raced."""
        booking = await session.scalar(
            select(Booking).where(Booking.id == uuid.UUID(job.payload["bookingId"])).with_for_update()
        )
        if booking is None or booking.status is BookingStatus.CANCELLED:
            return
        if booking.start_time.isoformat() != job.payload["startTime"]:
            return  # rescheduled since: the reminder for the new time is another job
        now = self._clock()
        snapshot = BookingOut.model_validate(booking).model_dump(mode="json", by_alias=True)
        self._outbox.record(session, EventType.REMINDER, snapshot, actor_id=None, now=now)
        self._metrics.reminder_lateness.observe(max(0.0, (now - job.due_at).total_seconds()))
