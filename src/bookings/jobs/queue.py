"""Operations on the jobs table. Writers call ``schedule``/``cancel`` inside their own transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bookings.db import after_commit
from bookings.jobs.models import LIVE_STATES, Job, JobState
from bookings.jobs.wakeup import Wakeup
from bookings.kit.pagination import PageRequest, Position, keyset
from bookings.ops.metrics import Metrics

MAX_ERROR_LENGTH = 2000


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    due_at: datetime


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job to add: what runs (``kind`` and ``payload``), when, and how often it may be tried."""

    kind: str
    payload: dict[str, Any]
    run_at: datetime
    max_attempts: int
    dedup_key: str | None = None


class JobQueue:
    def __init__(self, wakeup: Wakeup, metrics: Metrics) -> None:
        self._wakeup = wakeup
        self._metrics = metrics

    def schedule(self, session: AsyncSession, job: NewJob, *, now: datetime) -> None:
        """Add a job that exists only if ``session`` commits."""
        session.add(
            Job(
                kind=job.kind,
                dedup_key=job.dedup_key,
                payload=job.payload,
                state=JobState.PENDING.value,
                due_at=job.run_at,
                run_at=job.run_at,
                attempts=0,
                max_attempts=job.max_attempts,
                created_at=now,
                updated_at=now,
            )
        )
        after_commit(session, lambda: self.scheduled(job.kind))

    def scheduled(self, kind: str) -> None:
        """Wake the workers for a job that committed, and count it (a writer that adds jobs with SQL of its own
        calls this after its commit)."""
        self._wakeup.poke()
        self._metrics.jobs_scheduled.labels(kind).inc()

    async def cancel(self, session: AsyncSession, dedup_key: str, now: datetime) -> None:
        """Cancel the live job with this key, if any, so that another with the key may be scheduled at once.

        A running one is cancelled too, lease and all: its worker's ``complete`` then finds it no longer running
        and rolls its effect back, and a lease stranded by a killed worker no longer holds the key for a minute.
        """
        await session.execute(
            update(Job)
            .where(Job.dedup_key == dedup_key, Job.state.in_(LIVE_STATES))
            .values(state=JobState.CANCELLED.value, updated_at=now, finished_at=now, locked_by=None, locked_until=None)
            .execution_options(synchronize_session=False)
        )


async def claim(session: AsyncSession, worker: str, limit: int, *, now: datetime, lease: timedelta) -> list[ClaimedJob]:
    """Lease up to ``limit`` due jobs: pending ones whose time has come, and running ones whose lease ran out."""
    due = (
        select(Job.id)
        .where(
            or_(
                (Job.state == JobState.PENDING.value) & (Job.run_at <= now),
                (Job.state == JobState.RUNNING.value) & (Job.locked_until < now),
            )
        )
        .order_by(Job.run_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = await session.execute(
        update(Job)
        .where(Job.id.in_(due.scalar_subquery()))
        .values(
            state=JobState.RUNNING.value,
            locked_by=worker,
            locked_until=now + lease,
            attempts=Job.attempts + 1,
            updated_at=now,
        )
        .returning(Job.id, Job.kind, Job.payload, Job.attempts, Job.max_attempts, Job.due_at)
        .execution_options(synchronize_session=False)
    )
    return [ClaimedJob(*row) for row in rows]


async def complete(session: AsyncSession, job: ClaimedJob, worker: str, now: datetime) -> bool:
    """Mark done, if this worker still holds the lease. False means another worker took the job over."""
    result = await session.execute(
        update(Job)
        .where(Job.id == job.id, Job.state == JobState.RUNNING.value, Job.locked_by == worker)
        .values(state=JobState.DONE.value, finished_at=now, updated_at=now, locked_by=None, locked_until=None)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def fail(
    session: AsyncSession, job: ClaimedJob, worker: str, error: str, *, now: datetime, retry_in: float | None
) -> None:
    """Record a failed attempt: back to pending after ``retry_in`` seconds, or dead when ``retry_in`` is None."""
    values: dict[str, Any] = {
        "last_error": error[:MAX_ERROR_LENGTH],
        "updated_at": now,
        "locked_by": None,
        "locked_until": None,
    }
    if retry_in is None:
        values |= {"state": JobState.DEAD.value, "finished_at": now}
    else:
        values |= {"state": JobState.PENDING.value, "run_at": now + timedelta(seconds=retry_in)}
    await session.execute(
        update(Job)
        .where(Job.id == job.id, Job.state == JobState.RUNNING.value, Job.locked_by == worker)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


async def prune_finished(session: AsyncSession, before: datetime) -> None:
    """Delete jobs that finished (done or cancelled) before ``before``; dead letters stay until replayed."""
    await session.execute(
        delete(Job).where(Job.state.in_((JobState.DONE.value, JobState.CANCELLED.value)), Job.finished_at < before)
    )


@dataclass(frozen=True, slots=True)
class Backlog:
    """Per kind: jobs due and not yet claimed, how long the oldest of them has waited, and dead letters.

    A running job whose lease has expired counts as due: its worker is gone, and ``claim`` will hand it out again.
    """

    due: dict[str, int]
    oldest_due: dict[str, datetime]
    dead: dict[str, int]


async def backlog(session: AsyncSession, now: datetime) -> Backlog:
    due_now = and_(Job.state == JobState.PENDING.value, Job.run_at <= now)
    stranded = and_(Job.state == JobState.RUNNING.value, Job.locked_until < now)
    rows = await session.execute(
        select(Job.kind, Job.state, func.count(), func.min(Job.run_at))
        .where(or_(due_now, stranded, Job.state == JobState.DEAD.value))
        .group_by(Job.kind, Job.state)
    )
    found = Backlog(due={}, oldest_due={}, dead={})
    for kind, state, count, oldest in rows:
        if state == JobState.DEAD.value:
            found.dead[kind] = count
            continue
        found.due[kind] = found.due.get(kind, 0) + count
        found.oldest_due[kind] = min(oldest, found.oldest_due.get(kind, oldest))
    return found


async def next_due(session: AsyncSession) -> datetime | None:
    return await session.scalar(select(func.min(Job.run_at)).where(Job.state == JobState.PENDING.value))


async def dead_letters(session: AsyncSession, page: PageRequest) -> tuple[list[Job], int | None]:
    """Newest first; the count only when paging by number."""
    where = Job.state == JobState.DEAD.value
    total = None
    if page.page is not None:
        total = await session.scalar(select(func.count()).select_from(Job).where(where)) or 0
    rows = await session.scalars(keyset(select(Job).where(where), page, Job.finished_at, Job.id, descending=True))
    return list(rows), total


def dead_letter_position(job: Job) -> Position:
    return (job.finished_at, job.id)


async def retry_dead(session: AsyncSession, job_id: int, now: datetime) -> Job | None:
    """Give a dead job a fresh set of attempts, due now. None if there is no such dead job."""
    job = await session.scalar(select(Job).where(Job.id == job_id, Job.state == JobState.DEAD.value).with_for_update())
    if job is None:
        return None
    job.state = JobState.PENDING.value
    job.attempts = 0
    job.run_at = now
    job.updated_at = now
    job.finished_at = None
    await session.flush()
    return job


def is_live(state: str) -> bool:
    return state in LIVE_STATES
