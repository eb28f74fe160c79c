"""The whole benchmark, in order: database, private Redis, both servers (the service and the plain baseline),
accounts, small table, list @10k, bulk load, the other HTTP scenarios (each interleaved: ours, plain, ours,
plain), asyncpg baselines, report, clean-up."""

from __future__ import annotations

import asyncio
import functools
import os
import sys
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from bench import baseline, dataset
from bench.checks import check_create, same_json
from bench.cluster import RedisServer, sessions_opened
from bench.config import RESULTS_DIR, BenchConfig, parse_args
from bench.cpu import background_load
from bench.dataset import BenchDatabase, HistoryPlan
from bench.plain_app import OVERLAP_SQL
from bench.report import Facts, Row, compose, targets
from bench.runner import HttpRunner, IndexRanges, Progress, Series, git_commit
from bench.server import Account, PlainProcess, ServerProcess, ServiceProcess, check_request, register_and_login
from bench.wrk import LuaValue, WrkError, ensure_wrk

LIST_PATH = "/v1/bookings?type=upcoming&page=1&limit=20"
CREATE_SLOT = dataset.SLOT
CREATE_BASE_DAYS = 400  # creates (HTTP and asyncpg) book slots from here on, each run its own range of them
GET_TARGETS = 2_000


@dataclass(frozen=True, slots=True)
class People:
    """The accounts the scenarios use, registered and logged in through the service."""

    lists: list[Account]  # read: list and get
    creates: list[Account]  # book

    @property
    def list_ids(self) -> list[uuid.UUID]:
        return [a.user_id for a in self.lists]


@dataclass(frozen=True, slots=True)
class Workload:
    """The requests of the get and create scenarios, and what the asyncpg baselines do the same with."""

    pairs: list[tuple[str, str]]  # (booking id, owner id) for get
    providers: list[str]
    create_base: datetime

    def get_constants(self, tokens: dict[uuid.UUID, str]) -> dict[str, LuaValue]:
        return {
            "PATHS": [f"/v1/bookings/{b}" for b, _ in self.pairs],
            "TOKENS": [tokens[uuid.UUID(u)] for _, u in self.pairs],
        }

    def create_constants(self, people: People) -> dict[str, LuaValue]:
        return {
            "PROVIDERS": self.providers,
            "TOKENS": [a.token for a in people.creates],
            "BASE": int(self.create_base.timestamp()),
            "SLOT_SECONDS": int(CREATE_SLOT.total_seconds()),
        }


class Bench:
    def __init__(self, config: BenchConfig, say: Progress) -> None:
        self.config = config
        self.say = say
        self.facts = Facts()
        self.redis = RedisServer()
        self.servers: dict[str, ServerProcess] = {}
        self.conn: asyncpg.Connection | None = None
        self.ranges = IndexRanges(config.providers)

    async def run(self) -> int:
        RESULTS_DIR.mkdir(exist_ok=True)
        wrk = ensure_wrk()
        self.facts.idle_load = await background_load()
        self.say(f"before starting: {self.facts.idle_load:.2f} of {os.cpu_count()} cores busy with other work")
        db = await BenchDatabase.create(self.config.pg_admin_url)
        self.say(f"created database {db.name}")
        try:
            return await self._measure(db, wrk)
        finally:
            await self._stop_servers()
            await self.redis.stop()
            if self.conn is not None:
                await self.conn.close()
            await db.release(keep=self.config.keep_db, say=self.say)

    async def _start(self, db: BenchDatabase) -> None:
        await asyncio.to_thread(db.migrate)
        await self.redis.start()
        self.say(f"migrated (uv run bookings migrate); private redis-server {self.redis.version} on {self.redis.port}")
        workers = self.config.workers
        ours = ServiceProcess(db.url, workers, RESULTS_DIR / "server.log", redis_url=self.redis.url)
        plain = PlainProcess(db.url, workers, RESULTS_DIR / "plain.log", jwt_secret=ours.jwt_secret)
        self.servers = {"ours": ours, "plain": plain}
        for server in self.servers.values():  # one after the other: starting workers is CPU-heavy
            await server.start()
        self.say(f"service up at {ours.url} ({workers} workers, default settings, Redis); plain up at {plain.url}")
        for label, server in self.servers.items():
            if restarts := server.worker_restarts():
                self.say(f"{label}: uvicorn replaced {restarts} workers while starting (see {server.log_path.name})")

    async def _stop_servers(self) -> None:
        await asyncio.gather(*(server.stop() for server in self.servers.values()))

    async def _people(self) -> People:
        cfg = self.config
        emails = [f"bench-list-{k}@example.com" for k in range(cfg.list_users)]
        emails += [f"bench-create-{k}@example.com" for k in range(cfg.create_users)]
        accounts = await register_and_login(self.servers["ours"].url, emails)
        self.say(f"registered and logged in {len(accounts)} users through the API (argon2id)")
        return People(accounts[: cfg.list_users], accounts[cfg.list_users :])

    async def _load_small(self, conn: asyncpg.Connection, people: People) -> tuple[datetime, HistoryPlan]:
        cfg, facts = self.config, self.facts
        password_hash = await conn.fetchval("SELECT password_hash FROM users WHERE email = $1", people.lists[0].email)
        now = datetime.now(UTC)
        plan = HistoryPlan.for_config(cfg, now)
        await dataset.load_people(conn, cfg, password_hash)
        await dataset.load_small_history(conn, cfg, plan, people.list_ids)
        await dataset.load_upcoming(conn, cfg, now, people.list_ids)
        await conn.execute("ANALYZE")
        facts.small_rows = await dataset.count_bookings(conn)
        facts.small_profile = await dataset.user_profile(conn, people.list_ids[0])
        facts.sql_small = await dataset.time_upcoming(conn, people.list_ids)
        self.say(
            f"small table: {facts.small_rows:,} bookings; each list user has {facts.small_profile[0]:,} past and "
            f"{facts.small_profile[1]} upcoming"
        )
        return now, plan

    async def _load_big(self, db: BenchDatabase, conn: asyncpg.Connection, plan: HistoryPlan, people: People) -> None:
        """The bulk load, then the facts at the full size."""
        facts = self.facts
        self.say(f"loading {self.config.bookings - facts.small_rows:,} more bookings (set-based SQL)")
        await dataset.load_bulk_history(db.url, self.config, plan, people.list_ids)
        self.say("loaded; VACUUM ANALYZE and CHECKPOINT")
        await conn.execute("VACUUM ANALYZE")
        await conn.execute("CHECKPOINT")
        facts.big_rows = await dataset.count_bookings(conn)
        facts.big_profile = await dataset.user_profile(conn, people.list_ids[0])
        facts.sql_big = await dataset.time_upcoming(conn, people.list_ids)
        self.say(
            f"big table: {facts.big_rows:,} bookings; each list user has {facts.big_profile[0]:,} past and "
            f"{facts.big_profile[1]} upcoming"
        )

    async def _explain(self, conn: asyncpg.Connection, people: People, work: Workload) -> str:
        """EXPLAIN of the upcoming page and count at the full size, and of the plain baseline's overlap check for a
        free slot of one provider (which reads that provider's earlier bookings); printed and returned."""
        explain = await dataset.explain_upcoming(conn, people.list_ids[0])
        start = work.create_base - timedelta(hours=3)
        overlap = await dataset.explain_overlap(conn, work.providers[0], start, OVERLAP_SQL)
        explain += f"\n\n-- the plain baseline's overlap check (bench/plain_app.py), one provider\n{overlap}"
        print(f"\nEXPLAIN (ANALYZE, BUFFERS) at {self.facts.big_rows:,} rows:\n{explain}\n", flush=True)
        return explain

    async def _workload(self, conn: asyncpg.Connection, now: datetime, people: People) -> Workload:
        """The get and create requests, each tried once on both servers."""
        pairs = await dataset.owned_bookings(conn, people.list_ids, GET_TARGETS)
        providers = await dataset.provider_ids(conn, self.config)
        base = now.replace(minute=0, second=0, microsecond=0) + timedelta(days=CREATE_BASE_DAYS)
        tokens = {a.user_id: a.token for a in people.lists}
        booking, owner = pairs[0]
        for k, server in enumerate(self.servers.values(), start=1):
            await check_request(server.url, "GET", f"/v1/bookings/{booking}", tokens[uuid.UUID(owner)], 200)
            # An hour apart before the first slot of the scenarios: slots no run uses.
            await check_create(server.url, people.creates[0], providers[0], base - k * timedelta(hours=1), CREATE_SLOT)
        urls = (self.servers["ours"].url, self.servers["plain"].url)
        paths = {"a booking": f"/v1/bookings/{booking}", "an upcoming page": LIST_PATH}
        self.facts.same_json = await same_json(urls, paths, tokens[uuid.UUID(owner)])
        self.say(f"plain: {self.facts.same_json}")
        return Workload(pairs, providers, base)

    async def _measure(self, db: BenchDatabase, wrk: str) -> int:
        await self._start(db)
        people = await self._people()
        conn = self.conn = await db.connect()
        now, plan = await self._load_small(conn, people)
        with tempfile.TemporaryDirectory(prefix="bookings-bench-") as scripts:
            http = HttpRunner(
                wrk,
                db.name,
                self.config,
                Path(scripts),
                self.say,
                functools.partial(sessions_opened, conn),
                self.ranges,
                self.redis.pid,
            )
            list_constants: dict[str, LuaValue] = {"PATH": LIST_PATH, "TOKENS": [a.token for a in people.lists]}
            for server in self.servers.values():
                await check_request(server.url, "GET", LIST_PATH, people.lists[0].token, 200)
            list_small = await http.interleaved(self.servers, "list upcoming @10k", "list", list_constants)
            await self._load_big(db, conn, plan, people)
            work = await self._workload(conn, now, people)
            explain = await self._explain(conn, people, work)
            bare = await http.interleaved(self.servers, "bare GET /health/live", "bare", {"PATH": "/health/live"})
            tokens = {a.user_id: a.token for a in people.lists}
            get = await http.interleaved(self.servers, "get", "get", work.get_constants(tokens))
            list_big = await http.interleaved(self.servers, "list upcoming @1M", "list", list_constants)
            create = await http.interleaved(self.servers, "create", "create", work.create_constants(people))
        self.facts.restarts = {label: server.worker_restarts() for label, server in self.servers.items()}
        await self._stop_servers()
        self.say("servers stopped; asyncpg baselines")
        pg_get, pg_list, pg_create = await self._asyncpg(db, people, work, now)
        http_runs = {"bare": bare, "create": create, "get": get, "list_big": list_big, "list_small": list_small}
        return await self._report(http_runs, (pg_create, pg_get, pg_list), explain)

    async def _asyncpg(
        self, db: BenchDatabase, people: People, work: Workload, now: datetime
    ) -> tuple[Series, Series, Series]:
        cfg = self.config
        get_pairs = [(uuid.UUID(b), uuid.UUID(u)) for b, u in work.pairs]
        providers = [uuid.UUID(p) for p in work.providers]
        create_ids = [a.user_id for a in people.creates]
        results = await baseline.run_all(
            db.url,
            db.name,
            concurrency=cfg.connections,
            warmup_s=cfg.warmup_s,
            seconds=cfg.duration_s,
            operations=(
                ("asyncpg SELECT by id", baseline.get_op(get_pairs)),
                ("asyncpg upcoming SELECT (+count)", baseline.list_op(people.list_ids)),
                ("asyncpg INSERT", baseline.create_op(create_ids, providers, work.create_base, CREATE_SLOT)),
            ),
            offsets=lambda: (self.ranges.take(cfg.warmup_s), self.ranges.take(cfg.duration_s)),
            say=self.say,
        )
        get, listing, create = (Series((r,)) for r in results)
        return get, listing, create

    async def _report(self, runs: dict[str, dict[str, Series]], pg: tuple[Series, Series, Series], explain: str) -> int:
        rows = table_rows(runs, pg)
        best = {name: (series["ours"].best, series["plain"].best) for name, series in runs.items()}
        assert self.conn is not None
        self.facts.postgres = await self.conn.fetchval("SHOW server_version")
        self.facts.redis = self.redis.version
        self.facts.commit = git_commit()
        pairs = {"create": best["create"], "get": best["get"], "list upcoming @1M": best["list_big"]}
        report = compose(self.config, self.facts, rows, targets(pairs, best["list_big"][0], best["list_small"][0]))
        print("\n" + report)
        elapsed = self.say.elapsed
        (RESULTS_DIR / "latest.txt").write_text(
            f"{report}\nrun time: {elapsed:.0f} s\n\n"
            f"EXPLAIN (ANALYZE, BUFFERS) at {self.facts.big_rows:,} rows:\n{explain}\n"
        )
        self.say(f"done in {elapsed:.0f} s; saved to {RESULTS_DIR / 'latest.txt'}")
        errors = sum(row.series.errors for row in rows)
        if errors:
            print(
                f"INVALID RUN: {errors} errors (non-2xx or failed queries) in any run; the figures above do not count"
            )
            return 1
        return 0


def table_rows(runs: dict[str, dict[str, Series]], pg: tuple[Series, Series, Series]) -> list[Row]:
    """The table: each HTTP scenario on ours (with its ratio to plain) then on plain, then the asyncpg baselines."""
    pg_create, pg_get, pg_list = pg
    scenarios = (
        ("bare      GET /health/live", "bare", None),
        ("create    POST /v1/bookings", "create", pg_create),
        ("get       GET /v1/bookings/{id}", "get", pg_get),
        ("list      upcoming, 1M rows", "list_big", pg_list),
        ("list      upcoming, 10k rows", "list_small", None),
    )
    rows: list[Row] = []
    for label, name, asyncpg_series in scenarios:
        ours, plain = runs[name]["ours"], runs[name]["plain"]
        floor = asyncpg_series.best if asyncpg_series else None
        bare = runs["bare"] if name != "bare" else None
        rows.append(Row(label, "ours", ours, plain.best, floor, bare["ours"].best if bare else None))
        rows.append(Row(label, "plain", plain, None, floor, bare["plain"].best if bare else None))
    rows.append(Row("asyncpg   INSERT", "asyncpg", pg_create))
    rows.append(Row("asyncpg   SELECT by id", "asyncpg", pg_get))
    rows.append(Row("asyncpg   upcoming SELECT (+count)", "asyncpg", pg_list))
    return rows


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    try:
        return asyncio.run(Bench(config, Progress()).run())
    except WrkError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
