"""The whole benchmark, in order: database, service, accounts, small table, list @10k, bulk load, HTTP scenarios,
asyncpg baselines, report, clean-up."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from bench import baseline, dataset
from bench.config import PROJECT_DIR, RESULTS_DIR, BenchConfig, parse_args
from bench.cpu import CpuMeter, background_load
from bench.dataset import BenchDatabase, HistoryPlan
from bench.report import Facts, Row, compose, targets
from bench.server import Account, ServiceProcess, check_request, register_and_login
from bench.wrk import BalanceCheck, LoadResult, LuaValue, WrkError, ensure_wrk, run_wrk, write_script

LIST_PATH = "/v1/bookings?type=upcoming&limit=20"
CREATE_SLOT = timedelta(minutes=30)
CREATE_BASE_DAYS = 400  # HTTP creates book slots from here on; the asyncpg baseline from ASYNCPG_BASE_DAYS
ASYNCPG_BASE_DAYS = 3000
# Request indexes per load run, so that no two runs (warm-up, measured, re-run) book the same slot: room for
# 16,000 requests/s over 120 s. With 1,000 providers a run spans 2,000 half-hour slots (about 42 days), and the
# at most 35 runs of a bench stay well before the asyncpg baseline's slots, ASYNCPG_BASE_DAYS ahead.
RUN_SPAN = 2_000_000
BALANCE_ATTEMPTS = 6  # a measured run whose connections land unevenly on the workers is started again
GET_TARGETS = 2_000


class Progress:
    def __init__(self) -> None:
        self.started = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def __call__(self, message: str) -> None:
        print(f"[{self.elapsed:6.1f}s] {message}", flush=True)


@dataclass
class HttpRunner:
    """Runs one HTTP scenario with wrk: a warm-up, then the measured run with the CPU meter on."""

    wrk: str
    server: ServiceProcess
    database: str
    config: BenchConfig
    scripts: Path
    say: Progress
    sessions: Callable[[], Awaitable[int]]
    runs: int = 0

    async def scenario(self, name: str, scenario: str, constants: dict[str, LuaValue]) -> LoadResult:
        cfg = self.config
        script = write_script(self.scripts, scenario, constants, cfg.wrk_threads)
        wrk = functools.partial(
            run_wrk, self.wrk, self.server.url, script, name=name, connections=cfg.connections, threads=cfg.wrk_threads
        )
        self.runs += 1
        await wrk(seconds=cfg.warmup_s, offset=self.runs * RUN_SPAN)
        for attempt in range(1, BALANCE_ATTEMPTS + 1):
            self.runs += 1
            splits: list[list[int]] = []
            sessions_before = await self.sessions()
            outcome = await wrk(
                seconds=cfg.duration_s,
                offset=self.runs * RUN_SPAN,
                meter=CpuMeter(self.database, self.server.pgid, "child"),
                check=self._balance_check(splits, last=attempt == BALANCE_ATTEMPTS),
            )
            if isinstance(outcome, LoadResult):
                result = dataclasses.replace(
                    outcome,
                    spread="/".join(map(str, splits[-1])) if splits[-1] else "",
                    db_connects=await self.sessions() - sessions_before,
                )
                break
            self.say(f"{name}: the connections landed {outcome} on the workers; starting the run again")
            await asyncio.sleep(0.5)
        self.say(_summary(result))
        return result

    def _balance_check(self, splits: list[list[int]], *, last: bool) -> BalanceCheck:
        async def check() -> str | None:
            split = await self.server.connection_split(self.config.connections)
            splits.append(split)
            fair = self.config.connections // (2 * self.config.workers)
            if not split or min(split) >= fair or last:
                return None
            return "/".join(map(str, split))

        return check


def _summary(result: LoadResult) -> str:
    errors = f"{result.errors} errors ({result.error_detail})" if result.errors else "0 errors"
    cpu = f"; cores: {result.cpu.describe()}" if result.cpu else ""
    cpu += f" [{result.cpu.other_top}]" if result.cpu and result.cpu.other > 0.1 and result.cpu.other_top else ""
    cpu += f"; connections per worker {result.spread}" if result.spread else ""
    cpu += f"; {result.db_connects} new database connections" if result.db_connects is not None else ""
    return (
        f"{result.name}: {result.rps:,.0f} req/s, p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms, {errors}{cpu}"
    )


def _git_commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_DIR, capture_output=True, text=True, check=False
    )
    return done.stdout.strip() or "unknown"


async def run(config: BenchConfig) -> int:
    say = Progress()
    RESULTS_DIR.mkdir(exist_ok=True)
    wrk = ensure_wrk()
    facts = Facts(idle_load=await background_load())
    say(f"before starting: {facts.idle_load:.2f} of {os.cpu_count()} cores busy with other work")
    db = await BenchDatabase.create(config.pg_admin_url)
    say(f"created database {db.name}")
    server: ServiceProcess | None = None
    conn: asyncpg.Connection | None = None
    try:
        await asyncio.to_thread(db.migrate)
        say("migrated (uv run bookings migrate)")
        server = ServiceProcess(db.url, config.workers, RESULTS_DIR / "server.log")
        await server.start()
        say(f"service up at {server.url} ({config.workers} workers, BOOKINGS_LOG_LEVEL=WARNING)")

        list_emails = [f"bench-list-{k}@example.com" for k in range(config.list_users)]
        create_emails = [f"bench-create-{k}@example.com" for k in range(config.create_users)]
        accounts = await register_and_login(server.url, list_emails + create_emails)
        list_accounts, create_accounts = accounts[: config.list_users], accounts[config.list_users :]
        list_ids = [a.user_id for a in list_accounts]
        say(f"registered and logged in {len(accounts)} users through the API (argon2id)")

        conn = await db.connect()
        password_hash = await conn.fetchval("SELECT password_hash FROM users WHERE email = $1", list_emails[0])
        now = datetime.now(UTC)
        plan = HistoryPlan.for_config(config, now)
        await dataset.load_people(conn, config, password_hash)
        await dataset.load_small_history(conn, config, plan, list_ids)
        await dataset.load_upcoming(conn, config, now, list_ids)
        await conn.execute("ANALYZE")
        facts.small_rows = await dataset.count_bookings(conn)
        facts.small_profile = await dataset.user_profile(conn, list_ids[0])
        facts.sql_small = await dataset.time_upcoming(conn, list_ids)
        say(
            f"small table: {facts.small_rows:,} bookings; each list user has {facts.small_profile[0]:,} past and "
            f"{facts.small_profile[1]} upcoming"
        )

        with tempfile.TemporaryDirectory(prefix="bookings-bench-") as scripts:
            http = HttpRunner(wrk, server, db.name, config, Path(scripts), say, functools.partial(_sessions, conn))
            list_constants: dict[str, LuaValue] = {"PATH": LIST_PATH, "TOKENS": [a.token for a in list_accounts]}
            await check_request(server.url, "GET", LIST_PATH, list_accounts[0].token, 200)
            list_small = await http.scenario("list upcoming @10k", "list", list_constants)

            say(f"loading {config.bookings - facts.small_rows:,} more bookings (set-based SQL)")
            await dataset.load_bulk_history(db.url, config, plan, list_ids)
            say("loaded; VACUUM ANALYZE and CHECKPOINT")
            await conn.execute("VACUUM ANALYZE")
            await conn.execute("CHECKPOINT")
            facts.big_rows = await dataset.count_bookings(conn)
            facts.big_profile = await dataset.user_profile(conn, list_ids[0])
            facts.sql_big = await dataset.time_upcoming(conn, list_ids)
            say(
                f"big table: {facts.big_rows:,} bookings; each list user has {facts.big_profile[0]:,} past and "
                f"{facts.big_profile[1]} upcoming"
            )
            explain = await dataset.explain_upcoming(conn, list_ids[0])
            print(f"\nEXPLAIN (ANALYZE, BUFFERS) at {facts.big_rows:,} rows, one list user:")
            print(explain + "\n", flush=True)

            tokens = {a.user_id: a.token for a in list_accounts}
            pairs = await dataset.owned_bookings(conn, list_ids, GET_TARGETS)
            providers = await dataset.provider_ids(conn, config)
            create_base = int((now.replace(minute=0, second=0, microsecond=0)).timestamp()) + CREATE_BASE_DAYS * 86400
            await check_request(server.url, "GET", f"/v1/bookings/{pairs[0][0]}", tokens[uuid.UUID(pairs[0][1])], 200)
            await _check_create(server.url, create_accounts[0], providers[0], create_base)

            bare = await http.scenario("bare GET /health/live", "bare", {"PATH": "/health/live"})
            get = await http.scenario(
                "get GET /v1/bookings/{id}",
                "get",
                {"PATHS": [f"/v1/bookings/{b}" for b, _ in pairs], "TOKENS": [tokens[uuid.UUID(u)] for _, u in pairs]},
            )
            list_big = await http.scenario("list upcoming @1M", "list", list_constants)
            create = await http.scenario(
                "create POST /v1/bookings",
                "create",
                {
                    "PROVIDERS": providers,
                    "TOKENS": [a.token for a in create_accounts],
                    "BASE": create_base,
                    "SLOT_SECONDS": int(CREATE_SLOT.total_seconds()),
                },
            )

        await server.stop()
        say("service stopped; asyncpg baselines")
        pg_get, pg_list, pg_create = await _asyncpg_baselines(
            db, config, pairs, list_ids, [a.user_id for a in create_accounts], providers, now, say
        )

        rows = [
            Row("bare      GET /health/live", bare),
            Row("create    POST /v1/bookings", create, pg_create, bare),
            Row("get       GET /v1/bookings/{id}", get, pg_get, bare),
            Row("list      upcoming, 1M rows", list_big, pg_list, bare),
            Row("list      upcoming, 10k rows", list_small, None, bare),
            Row("asyncpg   INSERT", pg_create),
            Row("asyncpg   SELECT by id", pg_get),
            Row("asyncpg   upcoming SELECT (+count)", pg_list),
        ]
        facts.postgres = await conn.fetchval("SHOW server_version")
        facts.commit = _git_commit()
        report = compose(config, facts, rows, targets(list_big, list_small, create))
        print("\n" + report)
        elapsed = say.elapsed
        (RESULTS_DIR / "latest.txt").write_text(
            f"{report}\nrun time: {elapsed:.0f} s\n\n"
            f"EXPLAIN (ANALYZE, BUFFERS) at {facts.big_rows:,} rows:\n{explain}\n"
        )
        say(f"done in {elapsed:.0f} s; saved to {RESULTS_DIR / 'latest.txt'}")
        errors = sum(row.result.errors for row in rows)
        if errors:
            print(f"INVALID RUN: {errors} errors (non-2xx or failed queries); the figures above do not count")
            return 1
        return 0
    finally:
        if server is not None:
            await server.stop()
        if conn is not None:
            await conn.close()
        await db.release(keep=config.keep_db, say=say)


async def _sessions(conn: asyncpg.Connection) -> int:
    """Sessions ever opened on the bench's database (PostgreSQL flushes the counter within about a second)."""
    return int(await conn.fetchval("SELECT sessions FROM pg_stat_database WHERE datname = current_database()"))


async def _check_create(url: str, account: Account, provider: str, create_base: int) -> None:
    """One booking an hour before the first slot the create scenario uses: proves the body and the token."""
    start = datetime.fromtimestamp(create_base, UTC) - timedelta(hours=1)
    body = {
        "providerId": provider,
        "startTime": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "endTime": (start + CREATE_SLOT).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    await check_request(url, "POST", "/v1/bookings", account.token, 201, body)


async def _asyncpg_baselines(
    db: BenchDatabase,
    config: BenchConfig,
    pairs: list[tuple[str, str]],
    list_ids: list[uuid.UUID],
    create_ids: list[uuid.UUID],
    providers: list[str],
    now: datetime,
    say: Progress,
) -> tuple[LoadResult, LoadResult, LoadResult]:
    pool = await asyncpg.create_pool(db.url, min_size=config.connections, max_size=config.connections)
    assert pool is not None
    try:
        get_pairs = [(uuid.UUID(b), uuid.UUID(u)) for b, u in pairs]
        base = now.replace(minute=0, second=0, microsecond=0) + timedelta(days=ASYNCPG_BASE_DAYS)
        operations = (
            ("asyncpg SELECT by id", baseline.get_op(get_pairs)),
            ("asyncpg upcoming SELECT (+count)", baseline.list_op(list_ids)),
            ("asyncpg INSERT", baseline.create_op(create_ids, [uuid.UUID(p) for p in providers], base, CREATE_SLOT)),
        )
        results: list[LoadResult] = []
        for name, op in operations:
            result = await baseline.measure(
                pool,
                op,
                name=name,
                database=db.name,
                concurrency=config.connections,
                warmup_s=config.warmup_s,
                seconds=config.duration_s,
                span=RUN_SPAN,
            )
            say(_summary(result))
            results.append(result)
        return results[0], results[1], results[2]
    finally:
        await pool.close()


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    try:
        return asyncio.run(run(config))
    except WrkError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
