"""``python -m bench.reminders``: 10,000 reminders falling due within one minute, run by ``bookings worker``.

PostgreSQL, a private ``redis-server`` and one API instance (``bookings serve --workers 1``: its relay numbers the
``booking.reminder`` events the workers write, and publishes them). Each round starts its workers, waits until
each one LISTENs for jobs, then writes 10,000 bookings and their reminder jobs in one set-based statement, rows
exactly as ``Reminders.schedule`` and ``JobQueue.schedule`` write them, due evenly over one minute (``--spread``)
starting ``--lead-in`` seconds (30) after the workers are ready. Lateness is the reminder event's ``occurred_at``
(the worker's clock in the transaction that writes it and marks the job done) minus the job's ``due_at``.

The baseline round runs the same 10,000 reminders with one worker instead of two, in the same run: it shows
what the second worker buys (on two cores shared with PostgreSQL and the API, not necessarily anything).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg

from bench.cluster import (
    ApiInstance,
    Deployment,
    GroupMeter,
    GroupUsage,
    RedisServer,
    WorkerProcess,
    busy_warning,
    format_table,
    fresh_database,
    insert_people,
    percentile,
    postgres_version,
    ratio,
    run_until_done,
    start_backends,
    transactions,
    wait_for_listeners,
)
from bench.config import DEFAULT_PG_ADMIN_URL, RESULTS_DIR
from bench.dataset import BenchDatabase
from bench.report import Target, targets_text
from bench.runner import Progress, git_commit
from bench.server import register_and_login

TARGET_P99_S = 1.0
REMINDERS = 10_000
LEAD_SECONDS = 600  # BOOKINGS_REMINDER_LEAD_SECONDS: due = start - lead
USERS = 1_000
BOOKING_MINUTES = 30
# After the first due time, a round ends when every job is finished, or after spread + this many seconds
# (at least 100 s in all): bounds the run (two rounds stay under five minutes) if the workers fall behind.
DRAIN_LIMIT_S = 40.0
RELAY_IDLE_TIMEOUT_S = 30.0

# One statement, one transaction, as the service writes a booking and its reminder (less the booking.created
# event, which the relay would publish within seconds, long before the first reminder falls due): the booking
# (uuid4 id, confirmed, version 1), and the job of ``Reminders.schedule`` / ``JobQueue.schedule``: kind
# 'reminder', dedup key 'reminder:<id>', payload {"bookingId", "startTime": start_time.isoformat()} (Python's
# isoformat of an aware UTC datetime: microseconds only when not zero, "+00:00"), due_at = run_at = start - lead.
# Booking k of round r: user k mod USERS, provider r * REMINDERS + k (one booking each, so none overlaps),
# starting at first_start + k * spread / REMINDERS.
_ISO = (
    "to_char(b.start_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS')"
    " || CASE WHEN to_char(b.start_time AT TIME ZONE 'UTC', 'US') = '000000' THEN ''"
    " ELSE '.' || to_char(b.start_time AT TIME ZONE 'UTC', 'US') END || '+00:00'"
)
INSERT_ROUND_SQL = f"""
    WITH b AS (
        INSERT INTO bookings (id, user_id, provider_id, start_time, end_time, status, notes, cancel_reason, version,
                              created_at, updated_at, blocked_start, blocked_end)
        SELECT gen_random_uuid(), md5('bench-rem-user-' || (k % {USERS}))::uuid,
               md5('bench-rem-provider-' || ($2::int * {REMINDERS} + k))::uuid,
               s.start_time, s.start_time + interval '{BOOKING_MINUTES} minutes', 'confirmed', NULL, NULL, 1, $4, $4,
               s.start_time, s.start_time + interval '{BOOKING_MINUTES} minutes'
        FROM generate_series(0, {REMINDERS - 1}) AS k
        CROSS JOIN LATERAL (
            SELECT $1::timestamptz + (k * $3::float8 / {REMINDERS}) * interval '1 second' AS start_time
        ) AS s
        RETURNING id, start_time
    )
    INSERT INTO jobs (kind, dedup_key, payload, state, due_at, run_at, attempts, max_attempts, created_at, updated_at)
    SELECT 'reminder', 'reminder:' || b.id::text,
           jsonb_build_object('bookingId', b.id::text, 'startTime', {_ISO}),
           'pending', d.due_at, d.due_at, 0, 5, $4, $4
    FROM b CROSS JOIN LATERAL (SELECT b.start_time - interval '{LEAD_SECONDS} seconds' AS due_at) AS d
    RETURNING id
"""

ROUND_JOBS_SQL = """
    SELECT j.id, j.state, j.attempts, j.due_at, b.start_time, j.payload->>'startTime' AS payload_start
    FROM jobs j JOIN bookings b ON b.id = (j.payload->>'bookingId')::uuid
    WHERE j.id BETWEEN $1 AND $2
"""
ROUND_EVENTS_SQL = """
    SELECT e.id, e.booking_id, e.occurred_at, j.due_at
    FROM events e JOIN jobs j ON j.dedup_key = 'reminder:' || e.booking_id::text
    WHERE e.type = 'booking.reminder' AND j.id BETWEEN $1 AND $2
"""
# Jobs of the round that are finished (a reminder's event commits with its job's completion): a cheap poll.
ROUND_FINISHED_SQL = "SELECT count(*) FROM jobs WHERE id BETWEEN $1 AND $2 AND state NOT IN ('pending', 'running')"


@dataclass(frozen=True, slots=True)
class RemindersConfig:
    pg_admin_url: str = DEFAULT_PG_ADMIN_URL
    workers: int = 2
    baseline_workers: int = 1
    lead_in_s: float = 30.0  # from the workers being ready to the first due time
    spread_s: float = 60.0  # the due times cover this many seconds, evenly (0: all due at the same instant)
    keep_db: bool = False


@dataclass
class RoundResult:
    name: str
    workers: int
    first_due: datetime
    delivered: int = 0
    distinct: int = 0
    unnumbered: int = 0  # reminder events the relay had not given an id by the end
    lateness_ms: list[float] = field(default_factory=list)  # sorted
    rate: float = 0.0  # reminders per second, from the first due time to the last event
    max_backlog: int = 0  # most reminders due and not yet written at any moment
    states: Counter[str] = field(default_factory=Counter)
    retried: int = 0  # jobs that took more than one attempt
    cpu: GroupUsage | None = None
    transactions: int = 0  # PostgreSQL transactions in the bench's database while due (workers, relay, bench)
    elapsed_s: float = 0.0  # from the first due time to the last reminder written

    @property
    def duplicates(self) -> int:
        return self.delivered - self.distinct

    def p(self, q: float) -> float:
        return percentile(self.lateness_ms, q)


def _max_backlog(due: list[datetime], fired: list[datetime]) -> int:
    """Most reminders that were due and not yet written at the same moment."""
    moments = sorted([(t, 1) for t in due] + [(t, -1) for t in fired])
    backlog = peak = 0
    for _, step in moments:
        backlog += step
        peak = max(peak, backlog)
    return peak


class Bench:
    def __init__(self, config: RemindersConfig, say: Progress) -> None:
        self.config = config
        self.say = say
        self.redis = RedisServer()
        self.api: ApiInstance | None = None
        self.workers: list[WorkerProcess] = []
        self.conn: asyncpg.Connection | None = None
        self.db_name = ""

    async def run(self) -> int:
        RESULTS_DIR.mkdir(exist_ok=True)
        idle, db = await fresh_database(self.say, self.config.pg_admin_url)
        self.db_name = db.name
        try:
            deployment = await start_backends(self.say, db, self.redis, LEAD_SECONDS)
            self.api = ApiInstance(deployment, RESULTS_DIR / "reminders-api.log")
            await self.api.start()
            self.say(f"API instance up at {self.api.url} (its relay numbers the reminder events)")
            return await self._measure(db, deployment, idle)
        finally:
            await self._stop_workers()
            if self.api is not None:
                await self.api.stop()
            await self.redis.stop()
            if self.conn is not None:
                await self.conn.close()
            await db.release(keep=self.config.keep_db, say=self.say)

    async def _measure(self, db: BenchDatabase, deployment: Deployment, idle: float) -> int:
        assert self.api is not None
        self.conn = conn = await db.connect()
        (registered,) = await register_and_login(self.api.url, ["rem-registered@example.com"])
        password_hash = await conn.fetchval("SELECT password_hash FROM users WHERE id = $1", registered.user_id)
        rounds = [("baseline", self.config.baseline_workers), ("measured", self.config.workers)]
        await insert_people(conn, "rem-user", "user", USERS, password_hash)
        await insert_people(conn, "rem-provider", "provider", REMINDERS * len(rounds), password_hash)
        self.say(f"{USERS:,} users and {REMINDERS * len(rounds):,} providers inserted")
        results = []
        for index, (label, workers) in enumerate(rounds):
            name = f"{label}, {workers} worker{'s' * (workers > 1)}"
            results.append(await self._round(index, name, workers, deployment))
        baseline, measured = results
        report = compose(
            self.config,
            Facts(idle, await postgres_version(conn), git_commit(), self.redis.version),
            baseline,
            measured,
        )
        print("\n" + report)
        elapsed = self.say.elapsed
        (RESULTS_DIR / "reminders.txt").write_text(f"{report}\nrun time: {elapsed:.0f} s\n")
        self.say(f"done in {elapsed:.0f} s; saved to {RESULTS_DIR / 'reminders.txt'}")
        return 0 if all(r.delivered == REMINDERS == r.distinct for r in results) else 1

    async def _round(self, index: int, name: str, count: int, deployment: Deployment) -> RoundResult:
        """Round ``index`` with ``count`` workers, on providers ``index * REMINDERS`` onwards."""
        assert self.conn is not None
        assert self.api is not None
        conn = self.conn
        self.workers = [
            WorkerProcess(deployment, RESULTS_DIR / f"reminders-worker-{index + 1}-{n + 1}.log") for n in range(count)
        ]
        await asyncio.gather(*(w.start() for w in self.workers))
        await wait_for_listeners(conn, "bookings_jobs", count, self.workers)
        ready = datetime.now(UTC)
        first_due = ready + timedelta(seconds=self.config.lead_in_s)
        first_start = first_due + timedelta(seconds=LEAD_SECONDS)
        started = time.perf_counter()
        ids = await conn.fetch(INSERT_ROUND_SQL, first_start, index, self.config.spread_s, datetime.now(UTC))
        low, high = min(r["id"] for r in ids), max(r["id"] for r in ids)
        await conn.execute("VACUUM ANALYZE bookings, jobs, events")  # what autovacuum would have done by then
        await self._check_payloads(low, high)
        self.say(
            f"{name}: workers ready; {REMINDERS:,} bookings and reminder jobs written in "
            f"{time.perf_counter() - started:.1f} s, due from {first_due:%H:%M:%S} over {self.config.spread_s:g} s"
        )
        result = RoundResult(name, count, first_due)
        await asyncio.sleep(max(0.0, (first_due - datetime.now(UTC)).total_seconds() - 1.0))
        meter = GroupMeter(
            self.db_name,
            {"api": self.api.pgid, **{f"worker-{n + 1}": w.pgid for n, w in enumerate(self.workers)}},
            {"redis": self.redis.pid},
        )
        xacts_before = await transactions(conn)
        meter.start()
        spread = self.config.spread_s
        deadline = first_due + timedelta(seconds=max(100.0, spread + DRAIN_LIMIT_S))
        while datetime.now(UTC) < deadline:
            if await conn.fetchval(ROUND_FINISHED_SQL, low, high) >= REMINDERS:
                break
            if any(w.exited() for w in self.workers):
                raise RuntimeError("a worker exited during the round; see bench/results/reminders-worker-*.log")
            await asyncio.sleep(0.5)
        result.cpu = meter.stop()
        await asyncio.sleep(1.0)  # PostgreSQL's backends flush their counters about once a second
        result.transactions = await transactions(conn) - xacts_before
        await self._wait_relay_idle()
        await self._stop_workers()
        await self._collect(result, low, high)
        self.say(_summary(result))
        return result

    async def _check_payloads(self, low: int, high: int) -> None:
        """Every payload's startTime is what the handler compares it with: the booking's start_time.isoformat()."""
        assert self.conn is not None
        rows = await self.conn.fetch(ROUND_JOBS_SQL, low, high)
        wrong = [r for r in rows if r["start_time"].astimezone(UTC).isoformat() != r["payload_start"]]
        if len(rows) != REMINDERS or wrong:
            sample = f"{wrong[0]['payload_start']} vs {wrong[0]['start_time'].isoformat()}" if wrong else ""
            raise RuntimeError(f"{len(rows)} jobs, {len(wrong)} with a startTime the handler would skip {sample}")

    async def _wait_relay_idle(self) -> None:
        assert self.conn is not None
        deadline = time.monotonic() + RELAY_IDLE_TIMEOUT_S
        while time.monotonic() < deadline:
            if not await self.conn.fetchval("SELECT count(*) FROM events WHERE id IS NULL"):
                return
            await asyncio.sleep(0.2)

    async def _collect(self, result: RoundResult, low: int, high: int) -> None:
        assert self.conn is not None
        jobs = await self.conn.fetch(ROUND_JOBS_SQL, low, high)
        events = await self.conn.fetch(ROUND_EVENTS_SQL, low, high)
        result.states = Counter(r["state"] for r in jobs)
        result.retried = sum(1 for r in jobs if r["attempts"] > 1)
        result.delivered = len(events)
        result.distinct = len({r["booking_id"] for r in events})
        result.unnumbered = sum(1 for r in events if r["id"] is None)
        result.lateness_ms = sorted((r["occurred_at"] - r["due_at"]).total_seconds() * 1000 for r in events)
        if events:
            last = max(r["occurred_at"] for r in events)
            result.elapsed_s = (last - result.first_due).total_seconds()
            result.rate = len(events) / result.elapsed_s if result.elapsed_s > 0 else 0.0
            result.max_backlog = _max_backlog([r["due_at"] for r in jobs], [r["occurred_at"] for r in events])

    async def _stop_workers(self) -> None:
        workers, self.workers = self.workers, []
        await asyncio.gather(*(w.stop() for w in workers), return_exceptions=True)


def _summary(r: RoundResult) -> str:
    cpu = r.cpu.describe() if r.cpu else "-"
    return (
        f"{r.name}: {r.delivered:,} reminders ({r.distinct:,} bookings), lateness p50 {r.p(0.5):.0f} ms, "
        f"p99 {r.p(0.99):.0f} ms, max {r.p(1.0):.0f} ms; {r.rate:.0f}/s while due; most waiting {r.max_backlog:,}; "
        f"jobs {dict(r.states)}; cores: {cpu}"
    )


@dataclass(frozen=True, slots=True)
class Facts:
    idle_load: float
    postgres: str
    commit: str
    redis: str


def compose(config: RemindersConfig, facts: Facts, baseline: RoundResult, measured: RoundResult) -> str:
    header = (
        f"bookings reminders benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {facts.commit}, "
        f"{os.cpu_count()} cores ({facts.idle_load:.2f} busy with other work before the run), "
        f"PostgreSQL {facts.postgres}, Redis {facts.redis}\n"
        f"service: `bookings worker` processes (concurrency 16 each, the default) and one `bookings serve "
        f"--workers 1` (relay), distributed mode, BOOKINGS_LOG_LEVEL=WARNING\n"
        f"load: {REMINDERS:,} bookings, each with its reminder job, written in one statement; due evenly over "
        f"{config.spread_s:g} s ({_due_rate(config)}), the first {config.lead_in_s:g} s after the workers "
        "were ready\n"
        "lateness: the booking.reminder event's occurred_at (written with the job's completion) minus the job's "
        "due_at; rate: reminders written / (last written - first due)"
    )
    table = format_table(
        [
            "round",
            "reminders",
            "bookings",
            "dup",
            "p50 ms",
            "p99 ms",
            "max ms",
            "reminders/s",
            "most waiting",
            "jobs",
            "vs baseline: p50, p99, rate",
        ],
        [_row(baseline, None), _row(measured, baseline)],
        right={1, 2, 3, 4, 5, 6, 7, 8},
    )
    rounds = (baseline, measured)
    cpu_rows = [
        [r.name, r.cpu.describe() if r.cpu else "-", f"{r.transactions / max(1, r.delivered):.1f}"] for r in rounds
    ]
    cpu = format_table(["round", "CPU cores while due", "pg transactions per reminder"], cpu_rows, right={2})
    lines = [
        header,
        "",
        table,
        "",
        cpu,
        "",
        f"relay: reminder events without a public id at the end: baseline {baseline.unnumbered}, "
        f"measured {measured.unnumbered}",
        "",
        "targets:",
        targets_text(targets(measured)),
    ]
    if warning := busy_warning({r.name: r.cpu for r in rounds}):
        lines += ["", warning]
    return "\n".join(lines) + "\n"


def _due_rate(config: RemindersConfig) -> str:
    return f"{REMINDERS / config.spread_s:.0f}/s" if config.spread_s else "all at the same instant"


def _row(r: RoundResult, baseline: RoundResult | None) -> list[str]:
    vs = "-"
    if baseline is not None:
        vs = f"{ratio(r.p(0.5), baseline.p(0.5))}, {ratio(r.p(0.99), baseline.p(0.99))}, {ratio(r.rate, baseline.rate)}"
    jobs = ", ".join(f"{state} {n:,}" for state, n in sorted(r.states.items()))
    if r.retried:
        jobs += f" ({r.retried} retried)"
    return [
        r.name,
        f"{r.delivered:,}",
        f"{r.distinct:,}",
        str(r.duplicates),
        f"{r.p(0.5):.0f}",
        f"{r.p(0.99):.0f}",
        f"{r.p(1.0):.0f}",
        f"{r.rate:.0f}",
        f"{r.max_backlog:,}",
        jobs,
        vs,
    ]


def targets(measured: RoundResult) -> list[Target]:
    return [
        Target(
            f"p99 lateness <= {TARGET_P99_S:g} s ({measured.workers} workers)",
            f"p99 {measured.p(0.99) / 1000:.3f} s",
            bool(measured.lateness_ms) and measured.p(0.99) <= TARGET_P99_S * 1000,
        ),
        Target(
            f"exactly {REMINDERS:,} reminders, none twice",
            f"{measured.delivered:,} events for {measured.distinct:,} bookings",
            measured.delivered == REMINDERS == measured.distinct,
        ),
    ]


def parse_args(argv: list[str] | None = None) -> RemindersConfig:
    defaults = RemindersConfig()
    parser = argparse.ArgumentParser(prog="python -m bench.reminders", description="Benchmark reminder jobs.")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", defaults.pg_admin_url))
    parser.add_argument("--workers", type=int, default=defaults.workers, help="workers in the measured round")
    parser.add_argument("--baseline-workers", type=int, default=defaults.baseline_workers)
    parser.add_argument("--lead-in", type=float, default=defaults.lead_in_s, help="seconds before the first due")
    parser.add_argument(
        "--spread", type=float, default=defaults.spread_s, help="seconds the due times cover (0: a burst)"
    )
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database at the end")
    args = parser.parse_args(argv)
    if not 0 <= args.spread <= 120:
        parser.error("--spread must be 0 to 120 seconds")
    if not 1 <= args.workers <= 8 or not 1 <= args.baseline_workers <= 8:
        parser.error("--workers and --baseline-workers must be 1 to 8")
    if not 5 <= args.lead_in <= 60:
        parser.error("--lead-in must be 5 to 60 seconds")
    return RemindersConfig(
        pg_admin_url=args.pg_url,
        workers=args.workers,
        baseline_workers=args.baseline_workers,
        lead_in_s=args.lead_in,
        spread_s=args.spread,
        keep_db=args.keep_db,
    )


def main(argv: list[str] | None = None) -> int:
    return run_until_done(Bench(parse_args(argv), Progress()).run())


if __name__ == "__main__":
    sys.exit(main())
