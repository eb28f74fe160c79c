"""The worker: claims due jobs with a lease, runs each kind's handler, completes, retries or buries them.

Embedded mode runs one inside the API process; distributed mode runs ``bookings worker`` processes, any number,
which share the table through ``FOR UPDATE SKIP LOCKED``.

A handler receives the job and a write session whose transaction begins at its first statement; the job is
marked done in that same transaction. So a handler whose effect is a database write (a reminder's event) has
that effect exactly once, and a handler with an outside effect (a webhook) does its I/O before touching the
session, holding no lock or connection meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from bookings.db import Database
from bookings.jobs import queue
from bookings.jobs.backoff import retry_delay
from bookings.jobs.queue import ClaimedJob
from bookings.jobs.wakeup import Wakeup
from bookings.kit.time import Clock
from bookings.ops.metrics import Metrics

log = structlog.get_logger("bookings.jobs")

BACKLOG_SECONDS = 5.0  # how often the backlog gauges are refreshed

Handler = Callable[[ClaimedJob, AsyncSession], Awaitable[None]]
Pruner = Callable[[AsyncSession, datetime], Awaitable[None]]


class JobFailed(Exception):
    """A handler's way to say "this attempt failed, retry later" with a message worth keeping; ``permanent``: no
    later attempt can succeed (the job goes to the dead letters at once, where an admin may still replay it)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Worker:
    def __init__(
        self,
        db: Database,
        wakeup: Wakeup,
        metrics: Metrics,
        clock: Clock,
        *,
        concurrency: int = 16,
        poll_seconds: float = 1.0,
        lease: timedelta = timedelta(seconds=60),
        backoff_base: float = 5.0,
        backoff_cap: float = 3600.0,
        retention: timedelta = timedelta(days=7),
    ) -> None:
        self._db = db
        self._wakeup = wakeup
        self._metrics = metrics
        self._clock = clock
        self._handlers: dict[str, Handler] = {}
        self._concurrency = concurrency
        self._poll = poll_seconds
        self._lease = lease
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._running: set[asyncio.Task[None]] = set()
        self._retention = retention
        self._last_prune: datetime | None = None
        self._pruners: list[Pruner] = []
        self.name = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"

    def register(self, kind: str, handler: Handler) -> None:
        self._handlers[kind] = handler

    def prune_also(self, pruner: Pruner) -> None:
        """Run ``pruner(session, now)`` with the hourly prune of finished jobs, in its transaction."""
        self._pruners.append(pruner)

    async def run(self) -> None:
        """Claim and run jobs until cancelled."""
        log.info("worker_started", worker=self.name, concurrency=self._concurrency)
        watching = asyncio.create_task(self._watch_backlog())
        try:
            while True:
                try:
                    claimed = await self._claim()
                except Exception as exc:  # the database is down: back off, keep the loop alive
                    log.warning("claim_failed", error=type(exc).__name__)
                    await asyncio.sleep(self._poll)
                    continue
                free = self._concurrency - len(self._running)
                for job in claimed:
                    task = asyncio.create_task(self._execute(job))
                    self._running.add(task)
                    task.add_done_callback(self._running.discard)
                if claimed and len(claimed) == free and len(self._running) < self._concurrency:
                    continue  # every free slot was filled and some have freed since: more may be due
                await self._idle()
        finally:
            watching.cancel()
            for task in self._running:
                task.cancel()
            await asyncio.gather(watching, *self._running, return_exceptions=True)

    async def _watch_backlog(self) -> None:
        """Keep the backlog gauges current (jobs due, the oldest one's wait, dead letters), even while busy."""
        while True:
            try:
                await self.observe_backlog()
            except Exception as exc:
                log.warning("backlog_failed", error=type(exc).__name__)
            await asyncio.sleep(BACKLOG_SECONDS)

    async def observe_backlog(self) -> None:
        now = self._clock()
        async with self._db.read_sessions() as session:
            found = await queue.backlog(session, now)
        for kind in self._handlers:
            self._metrics.jobs_due.labels(kind).set(found.due.get(kind, 0))
            oldest = found.oldest_due.get(kind)
            self._metrics.jobs_oldest_due.labels(kind).set((now - oldest).total_seconds() if oldest else 0.0)
            self._metrics.jobs_dead_now.labels(kind).set(found.dead.get(kind, 0))

    async def _claim(self) -> list[ClaimedJob]:
        free = self._concurrency - len(self._running)
        if free <= 0:
            return []
        async with self._db.write_sessions() as session, session.begin():
            return await queue.claim(session, self.name, free, now=self._clock(), lease=self._lease)

    async def prune(self, *, force: bool = False) -> None:
        """Drop finished jobs past retention, and whatever else was registered (``prune_also``), at most once an
        hour unless forced (any worker may; deleting twice is harmless)."""
        now = self._clock()
        if not force and self._last_prune is not None and now - self._last_prune < timedelta(hours=1):
            return
        self._last_prune = now
        async with self._db.write_sessions() as session, session.begin():
            await queue.prune_finished(session, now - self._retention)
            for pruner in self._pruners:
                await pruner(session, now)

    async def _idle(self) -> None:
        """Sleep until a job may be due: woken by a new job, a finished one, the next due time, or the poll."""
        try:
            await self.prune()
        except Exception as exc:
            log.warning("prune_failed", error=type(exc).__name__)
        seconds = self._poll
        if len(self._running) < self._concurrency:
            try:
                async with self._db.read_sessions() as session:
                    due = await queue.next_due(session)
                if due is not None:
                    seconds = min(seconds, max(0.0, (due - self._clock()).total_seconds()))
            except Exception as exc:
                log.warning("next_due_failed", error=type(exc).__name__)
        if seconds <= 0:
            return
        waiters: set[asyncio.Future[object]] = {asyncio.ensure_future(self._wakeup.wait(seconds))}
        if len(self._running) >= self._concurrency:
            waiters |= set(self._running)  # type: ignore[arg-type]
        _done, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for waiter in pending:
            if waiter not in self._running:
                waiter.cancel()

    async def _execute(self, job: ClaimedJob) -> None:
        handler = self._handlers.get(job.kind)
        try:
            if handler is None:
                raise JobFailed(f"no handler for job kind {job.kind!r}")
            async with self._db.write_sessions() as session:
                await handler(job, session)
                if await queue.complete(session, job, self.name, self._clock()):
                    await session.commit()
                    self._metrics.jobs_succeeded.labels(job.kind).inc()
                else:  # the lease ran out and another worker has the job: leave the effect to it
                    await session.rollback()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._record_failure(job, exc)

    async def _record_failure(self, job: ClaimedJob, exc: Exception) -> None:
        message = str(exc) if isinstance(exc, JobFailed) else f"{type(exc).__name__}: {exc}"
        last = job.attempts >= job.max_attempts or (isinstance(exc, JobFailed) and exc.permanent)
        retry_in = None if last else retry_delay(job.attempts, base=self._backoff_base, cap=self._backoff_cap)
        log.warning("job_failed", job_id=job.id, kind=job.kind, attempt=job.attempts, error=message, dead=last)
        try:
            async with self._db.write_sessions() as session, session.begin():
                await queue.fail(session, job, self.name, message, now=self._clock(), retry_in=retry_in)
        except Exception as db_exc:  # the lease will expire and the job will be claimed again
            log.warning("job_failure_not_recorded", job_id=job.id, error=type(db_exc).__name__)
            return
        (self._metrics.jobs_dead if last else self._metrics.jobs_retried).labels(job.kind).inc()
