"""The jobs package on real databases: leases, concurrent claims, retries with backoff, dead letters."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bookings.db import Database
from bookings.jobs import queue
from bookings.jobs.backoff import retry_delay
from bookings.jobs.models import Job
from bookings.jobs.queue import JobQueue, NewJob
from bookings.jobs.wakeup import LocalWakeup
from bookings.jobs.worker import JobFailed, Worker
from bookings.kit.pagination import PageRequest
from bookings.ops.metrics import Metrics
from tests.support.clock import SettableClock

NOW = datetime(2031, 1, 1, 9, tzinfo=UTC)
LEASE = timedelta(seconds=30)


async def _schedule(db: Database, count: int, *, at: datetime = NOW, key: str | None = None, attempts: int = 3) -> None:
    jobs = JobQueue(LocalWakeup(), Metrics())
    async with db.write_sessions() as session, session.begin():
        for n in range(count):
            job = NewJob(kind="test", payload={"n": n}, run_at=at, max_attempts=attempts, dedup_key=key)
            jobs.schedule(session, job, now=NOW)


async def _claim(db: Database, worker: str, limit: int, now: datetime = NOW) -> list[queue.ClaimedJob]:
    async with db.write_sessions() as session, session.begin():
        return await queue.claim(session, worker, limit, now=now, lease=LEASE)


class TestClaim:
    async def test_only_due_jobs_are_claimed_and_each_by_one_worker(self, db: Database) -> None:
        await _schedule(db, 5)
        await _schedule(db, 2, at=NOW + timedelta(minutes=1))
        first, second = await _claim(db, "a", 3), await _claim(db, "b", 10)
        assert len(first) == 3
        assert len(second) == 2
        assert not {j.id for j in first} & {j.id for j in second}

    async def test_an_expired_lease_makes_the_job_claimable_again(self, db: Database) -> None:
        await _schedule(db, 1)
        (job,) = await _claim(db, "dead-worker", 1)
        assert await _claim(db, "b", 1, NOW + LEASE / 2) == []
        (again,) = await _claim(db, "b", 1, NOW + LEASE + timedelta(seconds=1))
        assert (again.id, again.attempts) == (job.id, 2)
        async with db.write_sessions() as session, session.begin():
            assert not await queue.complete(session, job, "dead-worker", NOW)  # it lost the job

    async def test_one_live_job_per_dedup_key(self, db: Database) -> None:
        await _schedule(db, 1, key="reminder:x")
        with pytest.raises(Exception, match=r"(?i)unique"):
            await _schedule(db, 1, key="reminder:x")
        jobs = JobQueue(LocalWakeup(), Metrics())
        async with db.write_sessions() as session, session.begin():
            await jobs.cancel(session, "reminder:x", NOW)
        await _schedule(db, 1, key="reminder:x")  # the cancelled one no longer counts


class TestWorker:
    async def test_failures_back_off_then_land_in_dead_letters_and_retry_resets(self, db: Database) -> None:
        clock = SettableClock(NOW)
        worker = Worker(db, LocalWakeup(), Metrics(), clock, backoff_base=10, backoff_cap=100)
        calls: list[int] = []

        async def failing(job: queue.ClaimedJob, _session: object) -> None:
            calls.append(job.attempts)
            raise JobFailed("receiver said no")

        worker.register("test", failing)
        await _schedule(db, 1, attempts=3)
        for _ in range(3):
            (job,) = await _claim(db, worker.name, 1, clock.now)
            await worker._execute(job)
            async with db.read_sessions() as session:
                row = (await session.scalars(select(Job))).one()
            if row.state == "pending":
                assert 5 <= (row.run_at - clock.now).total_seconds() <= 10 * 2 ** (job.attempts - 1)
                clock.now = row.run_at
        assert calls == [1, 2, 3]
        assert (row.state, row.attempts, row.last_error) == ("dead", 3, "receiver said no")
        async with db.read_sessions() as session:
            letters, total = await queue.dead_letters(session, PageRequest(page=1, limit=10))
        assert total == 1
        async with db.write_sessions() as session, session.begin():
            retried = await queue.retry_dead(session, letters[0].id, clock.now)
            assert retried is not None
            assert (retried.state, retried.attempts) == ("pending", 0)

    async def test_a_successful_handler_is_done_with_its_effect_in_the_same_transaction(self, db: Database) -> None:
        worker = Worker(db, LocalWakeup(), Metrics(), SettableClock(NOW))
        jobs = JobQueue(LocalWakeup(), Metrics())

        async def chain(job: queue.ClaimedJob, session: object) -> None:
            next_job = NewJob(kind="next", payload={}, run_at=NOW, max_attempts=1)
            jobs.schedule(session, next_job, now=NOW)  # type: ignore[arg-type]

        worker.register("test", chain)
        await _schedule(db, 1)
        (job,) = await _claim(db, worker.name, 1)
        await worker._execute(job)
        async with db.read_sessions() as session:
            states = dict((await session.execute(select(Job.kind, Job.state))).all())
        assert states == {"test": "done", "next": "pending"}

    async def test_the_backlog_gauges_count_due_waiting_and_dead_jobs(self, db: Database) -> None:
        clock = SettableClock(NOW + timedelta(seconds=90))
        metrics = Metrics()
        worker = Worker(db, LocalWakeup(), metrics, clock)

        async def never_runs(_job: queue.ClaimedJob, _session: object) -> None:
            raise AssertionError("observing the backlog runs nothing")

        worker.register("test", never_runs)
        worker.register("other", never_runs)
        await _schedule(db, 3)  # due 90 s ago
        await _schedule(db, 2, at=NOW + timedelta(seconds=60))  # due 30 s ago
        await _schedule(db, 4, at=NOW + timedelta(hours=1))  # not due yet
        (claimed,) = await _claim(db, "elsewhere", 1, clock.now)  # running: no longer waiting
        async with db.write_sessions() as session, session.begin():
            await queue.fail(session, claimed, "elsewhere", "boom", now=clock.now, retry_in=None)  # ...and dead
        await _claim(db, "crashed", 1, NOW)  # its lease ran out 60 s ago: due again, so still counted
        await worker.observe_backlog()

        def gauge(name: str, kind: str) -> float | None:
            return metrics.registry.get_sample_value(name, {"kind": kind})

        assert gauge("bookings_jobs_due", "test") == 4
        assert gauge("bookings_jobs_oldest_due_seconds", "test") == 90
        assert gauge("bookings_jobs_dead", "test") == 1
        assert (gauge("bookings_jobs_due", "other"), gauge("bookings_jobs_dead", "other")) == (0, 0)


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    rng = random.Random(1)
    delays = [retry_delay(n, base=1, cap=30, rng=rng) for n in range(1, 9)]
    for n, delay in enumerate(delays, start=1):
        ceiling = min(30, 2 ** (n - 1))
        assert ceiling / 2 <= delay <= ceiling


class TestPrune:
    async def test_finished_jobs_past_retention_are_deleted_but_dead_letters_stay(self, db: Database) -> None:
        clock = SettableClock(NOW)
        worker = Worker(db, LocalWakeup(), Metrics(), clock, retention=timedelta(days=7))

        async def ok(_job: queue.ClaimedJob, _session: object) -> None:
            return None

        async def broken(_job: queue.ClaimedJob, _session: object) -> None:
            raise JobFailed("no")

        worker.register("test", ok)
        await _schedule(db, 2, attempts=1)
        for job in await _claim(db, worker.name, 2):
            await worker._execute(job)
        worker.register("test", broken)
        await _schedule(db, 1, attempts=1)
        for job in await _claim(db, worker.name, 1):
            await worker._execute(job)
        clock.now = NOW + timedelta(days=6)
        await worker.prune()
        async with db.read_sessions() as session:
            assert len(list(await session.scalars(select(Job)))) == 3  # not old enough yet
        clock.now = NOW + timedelta(days=8)
        worker._last_prune = None
        await worker.prune()
        async with db.read_sessions() as session:
            assert [j.state for j in await session.scalars(select(Job))] == ["dead"]
