"""``python -m bench.availability``: slot search, and creates on scheduled providers against unscheduled ones.

Issue 14, acceptance point 5: "slot search for 31 days of a 15-minute grid with 1,000 existing bookings, p99 <= 25 ms
at one connection and reported under load; creating a booking on a scheduled provider costs at most 1.3x one on an
unscheduled one."

The service runs as the other benches run it (``bookings serve --workers 2``, distributed mode with a private
``redis-server``, log level INFO, ``bench.server.ServiceProcess``) and with **its default settings, rate limits
included**: 60 creates a minute per user. The creates go round robin over enough users that none comes near that
(``CREATE_TOKENS``). The accounts are inserted with SQL (the argon2 hash of one account registered through the API)
and their access tokens minted with the bench's signing key; everything else goes through the API:

- the **search provider**: ``PUT /v1/providers/{id}/availability`` with Europe/Berlin, every day 08:00-20:00,
  15-minute slots every 15 minutes, a horizon of 60 days; then 1,000 ``POST /v1/bookings`` on its slots of the 31
  days from tomorrow (1,488 slots; the 1,000 drawn with a fixed seed), by 25 users, 40 each;
- the **create providers**: as many with that same schedule (``scheduled``) as without any (``unscheduled``).

Then, in order:

1. the search ``GET /v1/providers/{id}/slots?from=<tomorrow>&to=<tomorrow + 30 days>`` once, its slots compared with
   the 488 free ones the bench computes itself (zoneinfo, wall times at fold=0, as the issue defines them);
2. the same search with wrk (the main bench's ``list`` script: one path, the tokens round robin) at **one
   connection** (one request after the other) and **under load** at ``--connections`` (32), ``--rounds`` runs of
   each, each a warm-up then a measured run;
3. **creates**, interleaved: unscheduled, scheduled, unscheduled, scheduled (``--rounds``), wrk at 32 connections
   (``lua/slot_create.lua``): request *i* books provider *i* mod P of its kind for the (*i* div P)-th slot of the grid
   from the day after tomorrow to 58 days ahead (08:00-20:00 Berlin, 15 minutes), the same times for both kinds, so
   every request is an offered slot of a scheduled provider, inside its horizon; every run its own range of *i*
   (``bench.runner.IndexRanges``), so no two requests ever book the same slot. Before them, an off-grid time is
   refused on a scheduled provider (422) and accepted on an unscheduled one (201). The service is started again
   (same settings, same signing key) before the creates: at the defaults a worker's two pools (SQLAlchemy's, which
   the search uses, and the asyncpg one of the creates) can hold about 60 connections between them, and they keep
   them for minutes, so the searches' connections would otherwise stay open beside the creates' on a PostgreSQL
   that allows 100.

Any answer but a 200 (search) or a 201 (create), in any run, warm-ups included, makes the run invalid (exit 1).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import math
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as wall_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx

from bench.cluster import (
    RedisServer,
    format_table,
    fresh_database,
    insert_people,
    mint_token,
    person_id,
    postgres_version,
    run_until_done,
    sessions_opened,
)
from bench.config import DEFAULT_PG_ADMIN_URL, RESULTS_DIR, BenchConfig, check_run_arguments, run_arguments
from bench.dataset import BenchDatabase
from bench.report import Row, Target, busy_warning, restart_warning, targets_text
from bench.runner import BALANCE_ATTEMPTS, HttpRunner, IndexRanges, Progress, Series, cpu_us, git_commit
from bench.server import ServiceProcess, register_and_login
from bench.wrk import LoadResult, LuaValue, WrkError, ensure_wrk

TARGET_SEARCH_P99_MS = 25.0  # at one connection
TARGET_COST_RATIO = 1.3  # a create on a scheduled provider over one on an unscheduled provider
ZONE = "Europe/Berlin"
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
OPENS, CLOSES = wall_time(8, 0), wall_time(20, 0)
SLOT = timedelta(minutes=15)
HORIZON_DAYS = 60
SCHEDULE: dict[str, Any] = {
    "timeZone": ZONE,
    "weeklyHours": {day: [{"start": "08:00", "end": "20:00"}] for day in WEEKDAYS},
    "slotLengthMinutes": 15,
    "slotIntervalMinutes": 15,
    "maxHorizonDays": HORIZON_DAYS,
}
SEARCH_DAYS = 31  # from tomorrow, in the provider's zone
EXISTING = 1_000  # bookings of the search provider inside those days
SEED_USERS = 25  # who make them: 40 each, under the default 60 creates a minute
SEED_RANDOM = 14  # which slots they take
CREATE_FIRST_DAY, CREATE_LAST_DAY = 2, HORIZON_DAYS - 2  # the create runs' slots: days after today in Berlin
# Request indexes a create run may use per second: about 4x what two cores serve (the main bench's creates reach
# about 1,300 a second), so a run never runs into the next one's slots.
CREATE_RATE = 5_000
# Users the creates go round robin over: at R creates a second each makes 60 R / CREATE_TOKENS a minute, under the
# default 60 while R stays under CREATE_TOKENS.
CREATE_TOKENS = 4_000
MIN_PROVIDERS = 100  # of each kind
HTTP_TIMEOUT_S = 10.0
SETUP_CONCURRENCY = 8  # set-up requests in flight (each may hold a database connection)
WARM_SLOTS = 2  # the last slots of the create grid: the rules-cache warm-up books them, one per worker
PIN_ATTEMPTS = 50  # connections opened to find one on each worker
UNSCHEDULED, SCHEDULED = "unscheduled", "scheduled"


@dataclass(frozen=True, slots=True)
class AvailabilityConfig:
    pg_admin_url: str = DEFAULT_PG_ADMIN_URL
    connections: int = 32
    duration_s: float = 8.0
    warmup_s: float = 2.0
    rounds: int = 2  # search under load: runs; creates: unscheduled, scheduled, unscheduled, scheduled
    workers: int = 2
    keep_db: bool = False

    def http(self) -> BenchConfig:
        """What ``bench.runner.HttpRunner`` reads: connections, durations, rounds and workers (one wrk thread)."""
        return BenchConfig(
            pg_admin_url=self.pg_admin_url,
            connections=self.connections,
            duration_s=self.duration_s,
            warmup_s=self.warmup_s,
            rounds=self.rounds,
            workers=self.workers,
        )

    def worst_indexes(self) -> int:
        """Request indexes the create runs of one kind may take, every re-run the balance check allows included."""
        ranges = IndexRanges(1, CREATE_RATE)
        return self.rounds * (ranges.size(self.warmup_s) + BALANCE_ATTEMPTS * ranges.size(self.duration_s))


def grid(first: date, days: int) -> list[datetime]:
    """The slot starts (UTC) of ``days`` local dates from ``first``: 08:00 to 20:00 in Berlin, every 15 elapsed
    minutes from 08:00, the wall times read at fold=0: the schedule's slots as the issue defines them."""
    zone = ZoneInfo(ZONE)
    starts: list[datetime] = []
    for n in range(days):
        day = first + timedelta(days=n)
        start = datetime.combine(day, OPENS, tzinfo=zone).astimezone(UTC)
        end = datetime.combine(day, CLOSES, tzinfo=zone).astimezone(UTC)
        while start + SLOT <= end:
            starts.append(start)
            start += SLOT
    return starts


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _booking(provider: uuid.UUID, start: datetime) -> dict[str, str]:
    return {"providerId": str(provider), "startTime": _utc(start), "endTime": _utc(start + SLOT)}


@dataclass(frozen=True, slots=True)
class Call:
    method: str
    path: str
    token: str
    expect: int
    body: object = None


async def send_all(url: str, calls: Sequence[Call], concurrency: int = SETUP_CONCURRENCY) -> list[httpx.Response]:
    """The set-up requests, ``concurrency`` at a time; the first answer that is not the expected one fails the run."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=HTTP_TIMEOUT_S, limits=limits) as client:

        async def one(call: Call) -> httpx.Response:
            async with gate:
                headers = {"Authorization": f"Bearer {call.token}"}
                response = await client.request(call.method, call.path, json=call.body, headers=headers)
            if response.status_code != call.expect:
                raise RuntimeError(
                    f"{call.method} {call.path}: expected {call.expect}, got {response.status_code} "
                    f"{response.text[:500]}"
                )
            return response

        return list(await asyncio.gather(*(one(call) for call in calls)))


@dataclass
class Facts:
    idle: float = 0.0
    postgres: str = ""
    redis: str = ""
    commit: str = ""
    policy: str = ""  # the RateLimit-Policy the service reported on a create
    window: tuple[str, str] = ("", "")
    free_slots: int = 0
    body_bytes: int = 0
    providers: int = 0  # of each kind
    create_slots: int = 0  # grid slots of each create provider the runs may book
    create_days: tuple[str, str] = ("", "")
    off_grid: str = ""  # what a scheduled and an unscheduled provider answered to the same off-grid time
    stored: dict[str, int] = field(default_factory=dict)  # confirmed bookings of each kind's providers at the end
    restarts: int = 0
    sessions: dict[str, int] = field(default_factory=dict)  # PostgreSQL sessions of the database after each phase
    search_ok: bool = False  # the search answered exactly the free slots
    mismatch: str = ""


class Bench:
    def __init__(self, config: AvailabilityConfig, say: Progress) -> None:
        self.config = config
        self.say = say
        self.facts = Facts()
        self.redis = RedisServer()
        self.server: ServiceProcess | None = None
        self.conn: asyncpg.Connection | None = None
        self.db_name = ""
        self.db_url = ""

    async def run(self) -> int:
        RESULTS_DIR.mkdir(exist_ok=True)
        wrk = ensure_wrk()
        idle, db = await fresh_database(self.say, self.config.pg_admin_url)
        self.facts.idle, self.db_name, self.db_url = idle, db.name, db.url
        try:
            await asyncio.to_thread(db.migrate)
            await self.redis.start()
            self.say(f"migrated; private redis-server {self.redis.version} on port {self.redis.port}")
            await self._start_service("search", "")
            return await self._measure(db, wrk)
        finally:
            if self.server is not None:
                await self.server.stop()
            await self.redis.stop()
            if self.conn is not None:
                await self.conn.close()
            await db.release(keep=self.config.keep_db, say=self.say)

    async def _start_service(self, phase: str, jwt_secret: str) -> ServiceProcess:
        """``bookings serve`` at its defaults with the default rate limits, its output in ``availability-<phase>.log``;
        the same signing key as before when given one (the minted tokens stay valid)."""
        if self.server is not None:
            self.facts.restarts += self.server.worker_restarts()
            await self.server.stop()
        self.server = ServiceProcess(
            self.db_url,
            self.config.workers,
            RESULTS_DIR / f"availability-{phase}.log",
            redis_url=self.redis.url,
            jwt_secret=jwt_secret,
            default_rate_limits=True,
        )
        await self.server.start()
        self.say(f"service up at {self.server.url} ({self.config.workers} workers, default settings, Redis)")
        return self.server

    async def _measure(self, db: BenchDatabase, wrk: str) -> int:
        cfg, facts, server = self.config, self.facts, self.server
        assert server is not None
        self.conn = conn = await db.connect()
        today = datetime.now(ZoneInfo(ZONE)).date()
        create_slots = grid(today + timedelta(days=CREATE_FIRST_DAY), CREATE_LAST_DAY - CREATE_FIRST_DAY + 1)
        room = len(create_slots) - WARM_SLOTS  # slots of each provider the runs may book
        providers = max(MIN_PROVIDERS, math.ceil(cfg.worst_indexes() * 1.05 / room))
        facts.providers, facts.create_slots = providers, len(create_slots)
        facts.create_days = (
            (today + timedelta(days=CREATE_FIRST_DAY)).isoformat(),
            (today + timedelta(days=CREATE_LAST_DAY)).isoformat(),
        )

        (registered,) = await register_and_login(server.url, ["avail-registered@example.com"])
        password_hash = await conn.fetchval("SELECT password_hash FROM users WHERE id = $1", registered.user_id)
        await insert_people(conn, "avail-seed", "user", SEED_USERS + 1, password_hash)  # the last one: the checks
        await insert_people(conn, "avail-user", "user", CREATE_TOKENS, password_hash)
        await insert_people(conn, "avail-search", "provider", 1, password_hash)
        for kind in (SCHEDULED, UNSCHEDULED):
            await insert_people(conn, f"avail-{kind}", "provider", providers + 1, password_hash)  # + the check's
        await conn.execute("ANALYZE")
        self.say(
            f"{SEED_USERS + 1 + CREATE_TOKENS:,} users and {2 * providers + 3} providers inserted (the hash of one "
            "registered account)"
        )

        secret = server.jwt_secret
        search = person_id("avail-search", 0)
        scheduled = [person_id(f"avail-{SCHEDULED}", n) for n in range(providers + 1)]
        puts = [
            Call("PUT", f"/v1/providers/{p}/availability", mint_token(secret, p, "provider"), 201, SCHEDULE)
            for p in [search, *scheduled]
        ]
        await send_all(server.url, puts)
        self.say(f"schedules set through the API: the search provider and {providers + 1} scheduled providers")

        seeders = [mint_token(secret, person_id("avail-seed", n), "user") for n in range(SEED_USERS + 1)]
        first = today + timedelta(days=1)
        window = grid(first, SEARCH_DAYS)
        taken = sorted(random.Random(SEED_RANDOM).sample(window, EXISTING))
        per_user = -(-EXISTING // SEED_USERS)
        began = time.perf_counter()
        await send_all(
            server.url,
            [
                Call("POST", "/v1/bookings", seeders[j // per_user], 201, _booking(search, s))
                for j, s in enumerate(taken)
            ],
        )
        self.say(
            f"{EXISTING:,} bookings of the search provider made through the API in "
            f"{time.perf_counter() - began:.1f} s ({SEED_USERS} users, {per_user} each)"
        )

        last = first + timedelta(days=SEARCH_DAYS - 1)
        path = f"/v1/providers/{search}/slots?from={first.isoformat()}&to={last.isoformat()}"
        facts.window = (first.isoformat(), last.isoformat())
        gone = set(taken)
        expected = [(s, s + SLOT) for s in window if s not in gone]
        await self._verify_search(path, seeders[0], expected)
        if not facts.search_ok:
            raise RuntimeError(f"the slot search is wrong: {facts.mismatch}")
        self.say(f"GET {path}: exactly the {len(expected):,} free slots ({facts.body_bytes:,} bytes)")

        unscheduled = [person_id(f"avail-{UNSCHEDULED}", n) for n in range(providers + 1)]
        tokens = [mint_token(secret, person_id("avail-user", n), "user") for n in range(CREATE_TOKENS)]
        slots: list[int] = [int(s.timestamp()) for s in create_slots]
        constants: dict[str, dict[str, LuaValue]] = {
            kind: {
                "PROVIDERS": [str(p) for p in ids[:providers]],
                "SLOTS": slots,
                "SLOT_SECONDS": int(SLOT.total_seconds()),
                "TOKENS": tokens,
            }
            for kind, ids in ((UNSCHEDULED, unscheduled), (SCHEDULED, scheduled))
        }
        with tempfile.TemporaryDirectory(prefix="bookings-bench-") as scripts:
            http = HttpRunner(
                wrk,
                db.name,
                cfg.http(),
                Path(scripts),
                self.say,
                functools.partial(sessions_opened, conn),
                IndexRanges(1),
                self.redis.pid,
            )
            search_constants: dict[str, LuaValue] = {"PATH": path, "TOKENS": seeders[:SEED_USERS]}
            alone = dataclasses.replace(http, config=dataclasses.replace(http.config, connections=1))
            searches: dict[int, list[LoadResult]] = {1: [], cfg.connections: []}
            for k in range(1, cfg.rounds + 1):
                for conns, runner in ((1, alone), (cfg.connections, http)):
                    name = f"search 31 days, {conns} conn{'s' if conns > 1 else ''} [{k}]"
                    searches[conns].append(await runner.scenario(server, name, "list", search_constants))
            sequential, loaded = Series(tuple(searches[1])), Series(tuple(searches[cfg.connections]))
            # A new service for the creates: the search's read connections would stay open beside the creates'
            # (a worker's pools may hold about 60 at the defaults, PostgreSQL allows 100 in all).
            facts.sessions["search"] = await _backends(conn)
            server = await self._start_service("create", secret)
            await self._check_creates(seeders[-1], scheduled[-1], unscheduled[-1], create_slots[0])
            run_providers = [*unscheduled[:providers], *scheduled[:providers]]
            await self._warm_rules(run_providers, create_slots[-WARM_SLOTS:], tokens)
            runners = {
                kind: dataclasses.replace(http, ranges=IndexRanges(providers, CREATE_RATE)) for kind in constants
            }
            capacity = providers * room
            creates: dict[str, list[LoadResult]] = {kind: [] for kind in constants}
            for k in range(1, cfg.rounds + 1):
                for kind in (UNSCHEDULED, SCHEDULED):
                    ranges = runners[kind].ranges
                    worst = ranges.size(cfg.warmup_s) + BALANCE_ATTEMPTS * ranges.size(cfg.duration_s)
                    if ranges.used + worst > capacity:  # cannot happen with the providers computed above
                        raise RuntimeError(f"the {kind} providers are out of free slots")
                    name = f"create {kind} [{k}]"
                    creates[kind].append(await runners[kind].scenario(server, name, "slot_create", constants[kind]))
        facts.sessions["create"] = await _backends(conn)
        facts.restarts += server.worker_restarts()
        await server.stop()
        self.say("service stopped")
        for kind, ids in ((UNSCHEDULED, unscheduled), (SCHEDULED, scheduled)):
            facts.stored[kind] = int(
                await conn.fetchval(
                    "SELECT count(*) FROM bookings WHERE provider_id = ANY($1) AND status = 'confirmed'", ids
                )
            )
        facts.postgres = await postgres_version(conn)
        facts.redis = self.redis.version
        facts.commit = git_commit()
        series = {kind: Series(tuple(runs)) for kind, runs in creates.items()}
        report = compose(cfg, facts, sequential, loaded, series)
        print("\n" + report)
        elapsed = self.say.elapsed
        (RESULTS_DIR / "availability.txt").write_text(f"{report}\nrun time: {elapsed:.0f} s\n")
        self.say(f"done in {elapsed:.0f} s; saved to {RESULTS_DIR / 'availability.txt'}")
        if not valid((sequential, loaded), series):
            print("INVALID RUN: an answer other than 200 (search) or 201 (create) in some run (see above)")
            return 1
        return 0

    async def _verify_search(self, path: str, token: str, expected: list[tuple[datetime, datetime]]) -> None:
        """One search, compared with the slots the bench computes itself."""
        assert self.server is not None
        (response,) = await send_all(self.server.url, [Call("GET", path, token, 200)])
        found = response.json()
        slots = [(datetime.fromisoformat(s["startTime"]), datetime.fromisoformat(s["endTime"])) for s in found["slots"]]
        facts = self.facts
        facts.free_slots, facts.body_bytes = len(slots), len(response.content)
        if found.get("slotLengthMinutes") != 15 or found.get("providerTimeZone") != ZONE:
            facts.mismatch = f"slotLengthMinutes {found.get('slotLengthMinutes')}, zone {found.get('providerTimeZone')}"
        elif slots != expected:
            extra = sorted(set(slots) - set(expected))[:3]
            missing = sorted(set(expected) - set(slots))[:3]
            facts.mismatch = (
                f"{len(slots)} slots, {len(expected)} expected; offered but taken or off the grid: "
                f"{[_utc(s) for s, _ in extra]}; free but not offered: {[_utc(s) for s, _ in missing]}"
            )
        facts.search_ok = not facts.mismatch

    async def _warm_rules(self, providers: list[uuid.UUID], slots: list[datetime], tokens: list[str]) -> None:
        """One create of every run provider on every worker, one request at a time per worker, before the runs: each
        worker then has every provider's rules in its cache (as it would after a while in production), and neither
        pool grows for the cold reads. The connections are pinned to the workers with ``ss`` (without it: as they
        land); each worker's creates take their own slot of the grid's last ``WARM_SLOTS``."""
        server = self.server
        assert server is not None
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        pinned: dict[int, httpx.AsyncClient] = {}
        spare: list[httpx.AsyncClient] = []
        try:
            for _ in range(PIN_ATTEMPTS):
                if len(pinned) >= min(self.config.workers, len(slots)):
                    break
                client = httpx.AsyncClient(base_url=server.url, timeout=HTTP_TIMEOUT_S, limits=limits)
                response = await client.get("/health/live")
                port = int(response.extensions["network_stream"].get_extra_info("client_addr")[1])
                owner = (await server.connection_owners()).get(port)
                if owner is None or owner in pinned:
                    spare.append(client)
                    if owner is None:  # no ss: one connection, wherever it landed
                        break
                    continue
                pinned[owner] = client
            clients = list(pinned.values()) or spare[:1]

            async def warm(client: httpx.AsyncClient, slot: datetime, first_token: int) -> None:
                for n, provider in enumerate(providers):
                    headers = {"Authorization": f"Bearer {tokens[(first_token + n) % len(tokens)]}"}
                    response = await client.post("/v1/bookings", json=_booking(provider, slot), headers=headers)
                    if response.status_code != 201:
                        raise RuntimeError(f"warming the rules: {response.status_code} {response.text[:300]}")

            began = time.perf_counter()
            await asyncio.gather(
                *(warm(c, slot, k * len(providers)) for k, (c, slot) in enumerate(zip(clients, slots, strict=False)))
            )
            self.say(
                f"rules cached: {len(providers)} creates on each of {len(clients)} workers "
                f"in {time.perf_counter() - began:.1f} s"
            )
        finally:
            for client in [*pinned.values(), *spare]:
                await client.aclose()

    async def _check_creates(self, token: str, scheduled: uuid.UUID, unscheduled: uuid.UUID, slot: datetime) -> None:
        """Before the runs, on two providers no run uses: an off-grid time is refused on the scheduled one and taken
        on the unscheduled one; a slot of the grid is taken on the scheduled one (its answer shows the rate limit
        policy, the default one)."""
        assert self.server is not None
        off = slot + timedelta(minutes=7)
        refused, taken, _ = await send_all(
            self.server.url,
            [
                Call("POST", "/v1/bookings", token, 422, _booking(scheduled, off)),
                Call("POST", "/v1/bookings", token, 201, _booking(scheduled, slot)),
                Call("POST", "/v1/bookings", token, 201, _booking(unscheduled, off)),
            ],
            concurrency=1,
        )
        kinds = [e.get("type") for e in refused.json().get("errors", [])]
        self.facts.policy = str(taken.headers.get("RateLimit-Policy", "(none)"))
        self.facts.off_grid = f"{_utc(off)}: scheduled 422 {'/'.join(map(str, kinds))}, unscheduled 201"
        self.say(f"checks: {self.facts.off_grid}; on the grid 201 with RateLimit-Policy {self.facts.policy}")


async def _backends(conn: asyncpg.Connection) -> int:
    """Sessions open on the bench's database now, the bench's own included: the pools the service has grown (they
    keep their connections for minutes)."""
    return int(await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"))


def valid(searches: Sequence[Series], creates: dict[str, Series]) -> bool:
    return all(s.errors == 0 for s in [*searches, *creates.values()])


def _cpu_total(result: LoadResult) -> float:
    """svc + pg µs per request (the target's cost; Redis is shown beside it)."""
    us = cpu_us(result)
    return us[0] + us[1] if us else 0.0


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("inf")


def compose(config: AvailabilityConfig, facts: Facts, alone: Series, loaded: Series, creates: dict[str, Series]) -> str:
    plain, sched = creates[UNSCHEDULED].best, creates[SCHEDULED].best
    cpu_ratio = _ratio(_cpu_total(sched), _cpu_total(plain))
    rps_ratio = _ratio(plain.rps, sched.rps)
    runs = (
        f"{config.rounds} runs of each, each {config.warmup_s:g} s of warm-up then {config.duration_s:g} s measured, "
        "the run with the most req/s reported"
    )
    header = (
        f"bookings availability benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {facts.commit}, "
        f"{os.cpu_count()} cores ({facts.idle:.2f} busy with other work before the run), "
        f"PostgreSQL {facts.postgres}, Redis {facts.redis}\n"
        f"service: `bookings serve --workers {config.workers}` at its defaults (log level INFO) in distributed mode "
        f"with a private redis-server; rate limits at their defaults (create: {facts.policy}), the creates round "
        f"robin over {CREATE_TOKENS:,} users\n"
        f"schedule: {ZONE}, every day 08:00-20:00, 15-minute slots every 15 minutes, horizon {HORIZON_DAYS} days\n"
        f"search: GET /v1/providers/{{id}}/slots?from={facts.window[0]}&to={facts.window[1]} (31 days, "
        f"{len(grid(date.fromisoformat(facts.window[0]), SEARCH_DAYS)):,} slots on the grid, {EXISTING:,} of them "
        f"booked through the API): {facts.free_slots:,} free slots, {facts.body_bytes:,} bytes, "
        f"{'exactly the ones expected' if facts.search_ok else 'WRONG: ' + facts.mismatch}; wrk -t1 at 1 and at "
        f"{config.connections} connections (closed loop), {runs}\n"
        f"creates: POST /v1/bookings, wrk -t1 -c{config.connections}, interleaved (unscheduled, scheduled, ...), "
        f"{runs}; {facts.providers} providers of each kind, the same {facts.create_slots:,} grid slots for both "
        f"({facts.create_days[0]} to {facts.create_days[1]}), each booked once; before them: {facts.off_grid}\n"
        "µs/req: CPU time per request of the service's processes (svc), PostgreSQL (pg) and the private Redis"
    )
    rows = [
        ("slot search, 31 days", "1", alone),
        ("slot search, 31 days", str(config.connections), loaded),
        ("create, unscheduled", str(config.connections), creates[UNSCHEDULED]),
        ("create, scheduled", str(config.connections), creates[SCHEDULED]),
    ]
    lines = []
    for label, conns, series in rows:
        best = series.best
        us = cpu_us(best) or (0.0, 0.0, 0.0)
        vs = "-"
        if series is creates[SCHEDULED] and plain.rps:
            vs = f"{sched.rps / plain.rps:.2f}x req/s, {cpu_ratio:.2f}x CPU/req (svc + pg)"
        lines.append(
            [
                label,
                conns,
                f"{best.rps:,.0f}",
                f"{best.p50_ms:.2f}",
                f"{best.p99_ms:.2f}",
                f"{best.max_ms:.2f}",
                str(series.errors),
                f"{us[0]:,.0f}",
                f"{us[1]:,.0f}",
                f"{us[2]:,.0f}",
                vs,
            ]
        )
    main = format_table(
        [
            "scenario",
            "conns",
            "req/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "errors",
            "svc µs/req",
            "pg µs/req",
            "redis µs/req",
            "scheduled vs unscheduled",
        ],
        lines,
        right={1, 2, 3, 4, 5, 6, 7, 8, 9},
    )
    pairs = list(zip(creates[UNSCHEDULED].runs, creates[SCHEDULED].runs, strict=True))
    every = [*alone.runs, *loaded.runs, *(r for pair in pairs for r in pair)]
    detail_lines = [
        [
            r.name,
            f"{r.requests:,}",
            f"{r.rps:,.0f}",
            f"{r.p50_ms:.2f}",
            f"{r.p99_ms:.2f}",
            f"{r.errors}",
            f"{_cpu_total(r):,.0f}",
            r.spread or "-",
            "-" if r.db_connects is None else str(r.db_connects),
            r.cpu.describe() if r.cpu else "-",
        ]
        for r in every
    ]
    details = format_table(
        [
            "run",
            "requests",
            "req/s",
            "p50 ms",
            "p99 ms",
            "errors",
            "svc+pg µs/req",
            "conns",
            "db connects",
            "CPU cores",
        ],
        detail_lines,
        right={1, 2, 3, 4, 5, 6, 8},
    )
    per_round = ", ".join(
        f"[{k}] {_ratio(_cpu_total(s), _cpu_total(u)):.2f}x CPU/req, {_ratio(u.rps, s.rps):.2f}x req/s"
        for k, (u, s) in enumerate(pairs, start=1)
    )
    checks = [
        f"creates, each scheduled run over the unscheduled run just before it: {per_round}",
        f"bookings stored on the create providers (warm-ups and in-flight requests included): unscheduled "
        f"{facts.stored.get(UNSCHEDULED, 0):,}, scheduled {facts.stored.get(SCHEDULED, 0):,}",
        f"PostgreSQL sessions open on the bench's database at the end of the searches: "
        f"{facts.sessions.get('search', 0)}, of the creates: {facts.sessions.get('create', 0)} (the service is "
        "started again between the two)",
    ]
    errors = [f"  {r.name}: {r.error_detail}" for r in every if r.errors]
    if errors:
        checks += ["errors (any answer but 200/201, socket errors, timeouts), warm-ups included:", *errors]
    one = alone.best
    found = [
        Target(
            f"slot search p99 at 1 connection <= {TARGET_SEARCH_P99_MS:g} ms",
            f"{one.p99_ms:.1f} ms (p50 {one.p50_ms:.1f} ms; at {config.connections} connections "
            f"{loaded.best.rps:,.0f} req/s, p99 {loaded.best.p99_ms:.0f} ms)",
            one.p99_ms <= TARGET_SEARCH_P99_MS and facts.search_ok,
        ),
        Target(
            f"create CPU/req (svc + pg), scheduled <= {TARGET_COST_RATIO:g}x unscheduled",
            f"{cpu_ratio:.2f}x ({_cpu_total(sched):,.0f} / {_cpu_total(plain):,.0f} µs)",
            cpu_ratio <= TARGET_COST_RATIO,
        ),
        Target(
            f"create req/s, unscheduled <= {TARGET_COST_RATIO:g}x scheduled",
            f"{rps_ratio:.2f}x ({plain.rps:,.0f} / {sched.rps:,.0f} req/s)",
            rps_ratio <= TARGET_COST_RATIO,
        ),
        Target(
            "0 errors in every run (warm-ups included)",
            str(sum(s.errors for s in [alone, loaded, *creates.values()])),
            valid((alone, loaded), creates),
        ),
    ]
    noisy = busy_warning(
        [
            Row("slot search, 1 connection", "service", alone),
            Row(f"slot search, {config.connections} connections", "service", loaded),
            *(Row(f"create {kind}", "service", s) for kind, s in creates.items()),
        ]
    )
    parts = [
        header,
        "",
        main,
        "",
        "every measured run (svc+pg µs/req: the targets' cost; conns: client connections per worker; db connects: "
        "PostgreSQL sessions opened during the run; CPU: cores busy)",
        details,
        "",
        *checks,
        "",
        "targets:",
        targets_text(found),
    ]
    return "\n".join(parts) + "\n" + noisy + restart_warning({"service": facts.restarts})


def parse_args(argv: list[str] | None = None) -> AvailabilityConfig:
    defaults = AvailabilityConfig()
    parser = argparse.ArgumentParser(
        prog="python -m bench.availability",
        description="Benchmark the slot search and creates on scheduled providers.",
    )
    run_arguments(parser, defaults, round_help="runs of each load scenario")
    parser.add_argument("--connections", type=int, default=defaults.connections, help="concurrent clients (wrk)")
    args = parser.parse_args(argv)
    check_run_arguments(parser, args)
    if not 1 <= args.connections <= 64:
        parser.error("--connections must be 1 to 64")
    return AvailabilityConfig(
        pg_admin_url=args.pg_url,
        connections=args.connections,
        duration_s=args.duration,
        warmup_s=args.warmup,
        rounds=args.rounds,
        workers=args.workers,
        keep_db=args.keep_db,
    )


def main(argv: list[str] | None = None) -> int:
    try:
        return run_until_done(Bench(parse_args(argv), Progress()).run())
    except WrkError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
