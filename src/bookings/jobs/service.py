"""What admins do with dead letters: list them and send them back to the queue."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from bookings.errors import NotFound
from bookings.jobs import queue
from bookings.jobs.schemas import DeadLetterOut, RetriedOut
from bookings.jobs.wakeup import Wakeup
from bookings.kit.pagination import Page, PageRequest, paged
from bookings.kit.time import Clock


class DeadLetterNotFound(NotFound):
    title, slug = "Dead letter not found", "dead-letter-not-found"


class DeadLetters:
    def __init__(self, wakeup: Wakeup, clock: Clock) -> None:
        self._wakeup = wakeup
        self._clock = clock

    async def list(self, session: AsyncSession, paging: PageRequest) -> Page[DeadLetterOut]:
        rows, total = await queue.dead_letters(session, paging)
        return paged(rows, total, paging, DeadLetterOut.model_validate, queue.dead_letter_position)

    async def retry(self, session: AsyncSession, job_id: int) -> RetriedOut:
        job = await queue.retry_dead(session, job_id, self._clock())
        if job is None:
            raise DeadLetterNotFound("No dead letter with this id.")
        self._wakeup.stage(session)
        return RetriedOut.model_validate(job)
