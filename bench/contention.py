"""``python -m bench.contention``: 32 clients racing for the same slot, against 32 that never meet.

Issue 13, acceptance point 3: "32 clients racing for the same slots: the p99 of the ``409``s is at most 2x that
of uncontended ``201``s". Before the per-provider advisory lock (``PROVIDER_LOCK_SPACE`` in
``src/bookings/bookings/store_postgres.py``), the losers of a race waited on each other's uncommitted rows in the
exclusion constraint until PostgreSQL's deadlock detector (``deadlock_timeout``, 1 s) broke the cycle.

The service runs as the main bench runs it (``bookings serve --workers 2``, distributed mode with a private
``redis-server``, log level INFO), and with **its default rate limits**: 60 creates a minute per user. The bench
does not raise them; it spreads the load over enough users instead: each client books as one user for at most
``USES_PER_USER`` requests (under the limit even if all of them fall in the same minute), then takes a fresh
user, never used before and never used by another client. The users (a few thousand) are inserted with SQL, with
the password hash of one account registered through the API, and their access tokens are minted with the bench's
signing key exactly as the service issues them (``bench.cluster.mint_token``). Any ``429`` makes the run invalid.

Both phases run the same loop, in **rounds**: each of the 32 clients (an ``httpx.AsyncClient`` of its own, one
keep-alive connection, 16 on each of the two workers) sends one ``POST /v1/bookings``, all at once, and the next
round starts when all 32 have answered. Only the slots differ, so the ratio of the two phases is the cost of the
race and nothing else:

- **uncontended** (A): client *c* books its own provider, the next free half hour of it: 32 distinct providers,
  no two requests of a round can meet, every answer must be ``201``;
- **contended** (B): all 32 book the same half hour of the same provider; the next round, the next half hour.
  Exactly one must get ``201`` and 31 ``409``.

The phases are interleaved (A, B, A, B: ``--rounds``, default 2), each run a warm-up then a measured run, and the
percentiles pool every measured run of a phase. Latency is the client's: from the call to ``post`` to the whole
answer read, in this process (on uvloop), which spends about half a core on httpx in both phases. After the runs
the bench reads back, from the database, every contended slot (exactly one confirmed booking each, the one whose
``201`` the clients saw) and every uncontended booking, and PostgreSQL's count of deadlocks in the bench's
database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from bench.cluster import (
    RedisServer,
    format_table,
    fresh_database,
    insert_people,
    mint_token,
    percentile,
    person_id,
    postgres_version,
    ratio,
    run_until_done,
)
from bench.config import DEFAULT_PG_ADMIN_URL, RESULTS_DIR, check_run_arguments, run_arguments
from bench.cpu import CpuMeter, CpuUsage
from bench.dataset import BenchDatabase
from bench.report import Target, targets_text
from bench.runner import BALANCE_ATTEMPTS, Progress, git_commit
from bench.server import ServiceProcess, register_and_login

TARGET_RATIO = 2.0  # p99 of the contended 409s over the p99 of the uncontended 201s
SLOT = timedelta(minutes=30)
BOOKINGS_AHEAD = timedelta(days=30)  # the first slot; its reminder (10 minutes before) is far off, and no worker runs
HTTP_TIMEOUT_S = 10.0
# The default BOOKINGS_RATE_LIMIT_BOOKINGS is 60/minute per user; a user makes at most this many requests in the
# whole run, so it stays under the limit whatever the timing.
USES_PER_USER = 50
# Users to insert: enough for this many requests a second over every run (warm-ups included). Two cores serve
# about 1,300 creates a second through wrk; the limit is far above that.
MAX_RATE = 2_500
MAX_ROUNDS_PER_SECOND = 200  # a second bound on a run, besides its duration
UNCONTENDED = "uncontended"
CONTENDED = "contended"


@dataclass(frozen=True, slots=True)
class ContentionConfig:
    pg_admin_url: str = DEFAULT_PG_ADMIN_URL
    clients: int = 32
    duration_s: float = 8.0
    warmup_s: float = 2.0
    rounds: int = 2  # A, B, A, B
    workers: int = 2
    keep_db: bool = False

    @property
    def users(self) -> int:
        seconds = 2 * self.rounds * (self.duration_s + self.warmup_s)
        return math.ceil(seconds * MAX_RATE / USES_PER_USER) + self.clients


@dataclass(frozen=True, slots=True)
class Answer:
    status: str  # "201", "409", ... or the transport error's class name
    ms: float
    booking_id: str = ""
    detail: str = ""


@dataclass
class RunResult:
    name: str
    phase: str
    round: int  # of the interleaving: the uncontended and contended runs of round k ran one after the other
    measured: bool
    rounds: int = 0  # of 32 requests
    seconds: float = 0.0
    statuses: Counter[str] = field(default_factory=Counter)
    ms: dict[str, list[float]] = field(default_factory=lambda: {"201": [], "409": []})
    bad_slots: int = 0  # contended rounds without exactly one 201 and the rest 409 (or uncontended ones not all 201)
    first_error: str = ""
    cpu: CpuUsage | None = None
    split: str = ""

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def p(self, status: str, q: float) -> float:
        return percentile(self.ms[status], q)

    @property
    def unexpected(self) -> int:
        """Answers that are neither a 201 nor, when contended, a 409: 5xx, 429, 4xx, transport errors."""
        allowed = {"201", "409"} if self.phase == CONTENDED else {"201"}
        return sum(n for status, n in self.statuses.items() if status not in allowed)


class UsersExhausted(RuntimeError):
    pass


class Users:
    """The bench's users, handed out ``USES_PER_USER`` requests at a time; each user goes to one client only."""

    def __init__(self, secret: str, count: int) -> None:
        self.secret = secret
        self.count = count
        self.taken = 0

    def next(self) -> dict[str, str]:
        if self.taken >= self.count:
            raise UsersExhausted(f"all {self.count:,} users used ({USES_PER_USER} requests each)")
        user_id = person_id("cont-user", self.taken)
        self.taken += 1
        token = mint_token(self.secret, user_id, "user")
        return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


class Client:
    """One of the 32: its own HTTP connection, and its own user until that user has made ``USES_PER_USER``."""

    def __init__(self, url: str, users: Users) -> None:
        self.url = url
        self.users = users
        self.http = self._connect()
        self.headers: dict[str, str] = {}
        self.uses = USES_PER_USER

    def _connect(self) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        return httpx.AsyncClient(base_url=self.url, timeout=HTTP_TIMEOUT_S, limits=limits)

    async def reconnect(self) -> None:
        await self.http.aclose()
        self.http = self._connect()

    async def open(self) -> int:
        """Opens the connection if it is not open (with a request that has no rate limit); returns its local port."""
        response = await self.http.get("/health/live")
        response.raise_for_status()
        address = response.extensions["network_stream"].get_extra_info("client_addr")
        return int(address[1])

    async def book(self, provider: uuid.UUID, start: datetime) -> Answer:
        if self.uses >= USES_PER_USER:
            self.headers = self.users.next()
            self.uses = 0
        self.uses += 1
        body = json.dumps(
            {
                "providerId": str(provider),
                "startTime": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "endTime": (start + SLOT).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        ).encode()
        began = time.perf_counter()
        try:
            response = await self.http.post("/v1/bookings", content=body, headers=self.headers)
        except httpx.HTTPError as exc:
            return Answer(type(exc).__name__, (time.perf_counter() - began) * 1000, detail=str(exc)[:300])
        ms = (time.perf_counter() - began) * 1000
        if response.status_code == 201:
            return Answer("201", ms, response.json()["id"])
        detail = "" if response.status_code == 409 else response.text[:300]
        return Answer(str(response.status_code), ms, detail=detail)

    async def close(self) -> None:
        await self.http.aclose()


class Slots:
    """The next free half hour of each provider: the uncontended clients' own providers, and one provider per
    contended run. Every slot booked (or raced for) is remembered, with the booking ids the clients were given."""

    def __init__(self, base: datetime) -> None:
        self.base = base
        self.next: Counter[uuid.UUID] = Counter()
        self.won: dict[tuple[uuid.UUID, datetime], list[str]] = {}  # contended slot -> ids answered with 201
        self.uncontended: list[str] = []  # ids answered with 201
        self.uncontended_providers: set[uuid.UUID] = set()

    def take(self, provider: uuid.UUID) -> datetime:
        start = self.base + self.next[provider] * SLOT
        self.next[provider] += 1
        return start


class Bench:
    def __init__(self, config: ContentionConfig, say: Progress) -> None:
        self.config = config
        self.say = say
        self.redis = RedisServer()
        self.server: ServiceProcess | None = None
        self.conn: asyncpg.Connection | None = None
        self.clients: list[Client] = []
        self.db_name = ""
        self.policy = ""  # the RateLimit-Policy the service reported on a create
        self.contended_runs = 0

    async def run(self) -> int:
        RESULTS_DIR.mkdir(exist_ok=True)
        idle, db = await fresh_database(self.say, self.config.pg_admin_url)
        self.db_name = db.name
        try:
            await asyncio.to_thread(db.migrate)
            await self.redis.start()
            self.say(f"migrated; private redis-server {self.redis.version} on port {self.redis.port}")
            self.server = ServiceProcess(
                db.url,
                self.config.workers,
                RESULTS_DIR / "contention-server.log",
                redis_url=self.redis.url,
                default_rate_limits=True,
            )
            await self.server.start()
            self.say(f"service up at {self.server.url} ({self.config.workers} workers, default settings, Redis)")
            return await self._measure(db, idle)
        finally:
            for client in self.clients:
                await client.close()
            if self.server is not None:
                await self.server.stop()
            await self.redis.stop()
            if self.conn is not None:
                await self.conn.close()
            await db.release(keep=self.config.keep_db, say=self.say)

    async def _measure(self, db: BenchDatabase, idle: float) -> int:
        cfg, server = self.config, self.server
        assert server is not None
        self.conn = conn = await db.connect()
        (registered,) = await register_and_login(server.url, ["cont-registered@example.com"])
        password_hash = await conn.fetchval("SELECT password_hash FROM users WHERE id = $1", registered.user_id)
        await insert_people(conn, "cont-user", "user", cfg.users, password_hash)
        providers = cfg.clients + cfg.rounds + 1  # one per uncontended client, one per contended run, the check's
        await insert_people(conn, "cont-provider", "provider", providers, password_hash)
        await conn.execute("ANALYZE")
        deadlocks_before = await _deadlocks(conn)
        users = Users(server.jwt_secret, cfg.users)
        slots = Slots(datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + BOOKINGS_AHEAD)
        self.policy = await self._check(server.url, users, slots)
        self.say(
            f"{cfg.users:,} users and {providers} providers inserted (the hash of one registered account); "
            f"a create answered 201 with RateLimit-Policy {self.policy}"
        )
        self.clients = [Client(server.url, users) for _ in range(cfg.clients)]
        runs: list[RunResult] = []
        exhausted = ""
        try:
            for k in range(1, cfg.rounds + 1):
                for phase in (UNCONTENDED, CONTENDED):
                    runs += await self._run(phase, k, slots)
        except UsersExhausted as exc:
            exhausted = f"stopped early: {exc}"
            self.say(exhausted)
        await asyncio.gather(*(client.close() for client in self.clients))
        self.clients = []
        restarts = server.worker_restarts()
        await server.stop()
        self.say("service stopped; reading back the bookings")
        stored = await _read_back(conn, slots)
        facts = Facts(
            idle=idle,
            postgres=await postgres_version(conn),
            redis=self.redis.version,
            commit=git_commit(),
            policy=self.policy,
            users=users.taken,
            deadlocks=await _deadlocks(conn) - deadlocks_before,
            restarts=restarts,
            exhausted=exhausted,
        )
        report = compose(cfg, facts, runs, stored)
        print("\n" + report)
        elapsed = self.say.elapsed
        (RESULTS_DIR / "contention.txt").write_text(f"{report}\nrun time: {elapsed:.0f} s\n")
        self.say(f"done in {elapsed:.0f} s; saved to {RESULTS_DIR / 'contention.txt'}")
        if exhausted or not valid(runs, stored):
            print(
                "INVALID RUN: an unexpected answer, a contended slot without exactly one 201, or the database "
                "disagrees with the answers (see above)"
            )
            return 1
        return 0

    async def _check(self, url: str, users: Users, slots: Slots) -> str:
        """One create on a provider no run uses, before anything is measured: proves the body, the minted token
        and that the rate limit is the default one (the policy the answer reports)."""
        provider = person_id("cont-provider", self.config.clients + self.config.rounds)
        start = slots.base - timedelta(hours=1)
        async with httpx.AsyncClient(base_url=url, timeout=HTTP_TIMEOUT_S) as client:
            body = {
                "providerId": str(provider),
                "startTime": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "endTime": (start + SLOT).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            response = await client.post("/v1/bookings", json=body, headers=users.next())
        if response.status_code != 201:
            raise RuntimeError(f"the check create: {response.status_code} {response.text[:500]}")
        return str(response.headers.get("RateLimit-Policy", "(none)"))

    async def _balanced(self) -> str:
        """The clients' connections, as many on each worker as on any other: uvicorn's workers share one listening
        socket and a burst of connections mostly lands on one of them (32/0), so the clients on a worker that has
        more than its share reconnect until each worker has its share, ``BALANCE_ATTEMPTS`` x 5 rounds at most.
        Checked before every run (a connection the server closed is opened again by httpx, anywhere). Returns the
        split, e.g. ``16/16``."""
        server = self.server
        assert server is not None
        share = -(-len(self.clients) // self.config.workers)
        split: list[int] = []
        for attempt in range(BALANCE_ATTEMPTS * 5):
            ports = await asyncio.gather(*(client.open() for client in self.clients))
            owners = await server.connection_owners()
            by_worker: dict[int, list[Client]] = {}
            unknown: list[Client] = []
            for client, port in zip(self.clients, ports, strict=True):
                if port in owners:
                    by_worker.setdefault(owners[port], []).append(client)
                else:
                    unknown.append(client)
            split = sorted((len(group) for group in by_worker.values()), reverse=True)
            split += [0] * (self.config.workers - len(split))
            excess = unknown + [c for group in by_worker.values() for c in group[share:]]
            if not owners or not excess:
                break
            if attempt == 0:
                self.say(f"the connections landed {'/'.join(map(str, split))} on the workers; moving {len(excess)}")
            for client in excess:  # one at a time: a burst would land on one worker again
                await client.reconnect()
                await client.open()
        return "/".join(map(str, split)) if split else "-"

    async def _run(self, phase: str, k: int, slots: Slots) -> list[RunResult]:
        """One run of a phase: its warm-up, then the measured run (with the CPU meter on)."""
        cfg, server = self.config, self.server
        assert server is not None
        hot = person_id("cont-provider", cfg.clients + self.contended_runs)
        if phase == CONTENDED:
            self.contended_runs += 1
        spread = await self._balanced()
        name = f"{phase} [{k}]"
        warmup = await self._rounds(f"{name} warm-up", phase, k, cfg.warmup_s, slots, hot, measured=False)
        meter = CpuMeter(self.db_name, server.pgid, "self", self.redis.pid)
        meter.start()
        result = await self._rounds(name, phase, k, cfg.duration_s, slots, hot, measured=True)
        result.cpu = meter.stop()
        result.split = spread
        self.say(_summary(result))
        return [warmup, result]

    async def _rounds(
        self, name: str, phase: str, k: int, seconds: float, slots: Slots, hot: uuid.UUID, *, measured: bool
    ) -> RunResult:
        result = RunResult(name, phase, k, measured)
        own = [person_id("cont-provider", c) for c in range(len(self.clients))]
        slots.uncontended_providers.update(own)
        began = time.perf_counter()
        deadline = began + seconds
        while time.perf_counter() < deadline and result.rounds < seconds * MAX_ROUNDS_PER_SECOND:
            if phase == UNCONTENDED:
                targets = [(p, slots.take(p)) for p in own]
            else:
                start = slots.take(hot)
                targets = [(hot, start)] * len(self.clients)
            answers = await asyncio.gather(*(c.book(p, s) for c, (p, s) in zip(self.clients, targets, strict=True)))
            result.rounds += 1
            won = [a.booking_id for a in answers if a.status == "201"]
            for answer in answers:
                result.statuses[answer.status] += 1
                if answer.status in result.ms:
                    result.ms[answer.status].append(answer.ms)
                if answer.detail and not result.first_error:
                    result.first_error = f"{answer.status} {answer.detail}"
            if phase == UNCONTENDED:
                slots.uncontended += won
                result.bad_slots += len(answers) - len(won)
            else:
                slots.won[(hot, targets[0][1])] = won
                lost = sum(a.status == "409" for a in answers)
                result.bad_slots += not (len(won) == 1 and lost == len(answers) - 1)
        result.seconds = time.perf_counter() - began
        for samples in result.ms.values():
            samples.sort()
        return result


async def _deadlocks(conn: asyncpg.Connection) -> int:
    """Deadlocks PostgreSQL detected in this database so far (read once the service's sessions have ended, when
    every backend has flushed its counters)."""
    return int(await conn.fetchval("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"))


@dataclass
class Stored:
    """What the database holds, against what the clients were told."""

    contended_slots: int = 0
    one_each: int = 0  # contended slots with exactly one confirmed booking, the one the clients saw a 201 for
    double: int = 0  # contended slots with more than one confirmed booking, or more than one 201
    empty: int = 0  # contended slots nobody got (no 201 and no booking)
    uncontended_answered: int = 0
    uncontended_stored: int = 0
    unanswered_rows: int = 0  # bookings in the database no client was given a 201 for


async def _read_back(conn: asyncpg.Connection, slots: Slots) -> Stored:
    stored = Stored(contended_slots=len(slots.won), uncontended_answered=len(slots.uncontended))
    hot = list({provider for provider, _ in slots.won})
    rows = await conn.fetch(
        "SELECT provider_id, start_time, array_agg(id::text) AS ids FROM bookings "
        "WHERE provider_id = ANY($1) AND status = 'confirmed' GROUP BY provider_id, start_time",
        hot,
    )
    in_db = {(r["provider_id"], r["start_time"]): sorted(r["ids"]) for r in rows}
    for key, won in slots.won.items():
        ids = in_db.pop(key, [])
        if len(won) == 1 and ids == won:
            stored.one_each += 1
        elif len(won) > 1 or len(ids) > 1:
            stored.double += 1
        elif not won and not ids:
            stored.empty += 1
    stored.unanswered_rows += sum(len(ids) for ids in in_db.values())
    ids = await conn.fetch(
        "SELECT id::text FROM bookings WHERE provider_id = ANY($1) AND status = 'confirmed'",
        list(slots.uncontended_providers),
    )
    found = {r["id"] for r in ids}
    stored.uncontended_stored = len(found & set(slots.uncontended))
    stored.unanswered_rows += len(found - set(slots.uncontended))
    return stored


def valid(runs: Sequence[RunResult], stored: Stored) -> bool:
    return (
        bool(runs)
        and all(r.unexpected == 0 and r.bad_slots == 0 for r in runs)
        and stored.one_each == stored.contended_slots
        and stored.uncontended_stored == stored.uncontended_answered
        and stored.unanswered_rows == 0
    )


def _summary(r: RunResult) -> str:
    statuses = ", ".join(f"{s} x {n:,}" for s, n in sorted(r.statuses.items()))
    figures = "; ".join(f"{s} p50 {r.p(s, 0.5):.1f} p99 {r.p(s, 0.99):.1f} ms" for s in ("201", "409") if r.ms[s])
    cores = f"; cores: {r.cpu.describe()}" if r.cpu else ""
    return f"{r.name}: {r.rounds:,} rounds, {r.rps:,.0f} req/s ({statuses}); {figures}{cores}; conns {r.split}"


@dataclass(frozen=True, slots=True)
class Facts:
    idle: float
    postgres: str
    redis: str
    commit: str
    policy: str
    users: int
    deadlocks: int
    restarts: int
    exhausted: str  # why the runs stopped early, if they did


def _pooled(runs: Sequence[RunResult], phase: str, status: str) -> list[float]:
    return sorted(ms for r in runs if r.measured and r.phase == phase for ms in r.ms[status])


def compose(config: ContentionConfig, facts: Facts, runs: Sequence[RunResult], stored: Stored) -> str:
    measured = [r for r in runs if r.measured]
    base = _pooled(runs, UNCONTENDED, "201")
    samples = {
        "uncontended 201": base,
        "contended 201": _pooled(runs, CONTENDED, "201"),
        "contended 409": _pooled(runs, CONTENDED, "409"),
    }
    header = (
        f"bookings contention benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {facts.commit}, "
        f"{os.cpu_count()} cores ({facts.idle:.2f} busy with other work before the run), "
        f"PostgreSQL {facts.postgres}, Redis {facts.redis}\n"
        f"service: `bookings serve --workers {config.workers}` at its defaults (log level INFO) in distributed mode "
        f"with a private redis-server; rate limits at their defaults (create: {facts.policy}, as the service "
        f"reported it), each user making at most {USES_PER_USER} requests ({facts.users:,} users in all)\n"
        f"load: {config.clients} clients (httpx, one keep-alive connection each) in rounds: all {config.clients} "
        "send one POST /v1/bookings at once, the next round when all have answered; uncontended: each client its "
        f"own provider; contended: all {config.clients} the same slot of one provider, a new slot each round\n"
        f"runs: {config.rounds} interleaved rounds (uncontended, contended, ...), each {config.warmup_s:g} s of "
        f"warm-up then {config.duration_s:g} s measured; percentiles pool every measured run of a phase; latency "
        "from the client's call to the whole answer read"
    )
    b99 = percentile(base, 0.99)
    b50 = percentile(base, 0.5)
    lines = [
        [
            label,
            f"{len(values):,}",
            f"{percentile(values, 0.5):.1f}",
            f"{percentile(values, 0.95):.1f}",
            f"{percentile(values, 0.99):.1f}",
            f"{percentile(values, 1.0):.1f}",
            f"{ratio(percentile(values, 0.5), b50)}, {ratio(percentile(values, 0.99), b99)}" if values else "-",
        ]
        for label, values in samples.items()
    ]
    main = format_table(
        ["answers", "count", "p50 ms", "p95 ms", "p99 ms", "max ms", "vs uncontended 201 (p50, p99)"],
        lines,
        right={1, 2, 3, 4, 5},
    )
    by_run = {(r.phase, r.round): r for r in measured}
    detail_lines = []
    for r in measured:
        paired = by_run.get((UNCONTENDED, r.round))
        vs = "-"
        if r.phase == CONTENDED and paired is not None and r.ms["409"]:
            vs = ratio(r.p("409", 0.99), paired.p("201", 0.99))
        detail_lines.append(
            [
                r.name,
                f"{r.rounds:,}",
                f"{r.rps:,.0f}",
                ", ".join(f"{s} x {n:,}" for s, n in sorted(r.statuses.items())),
                " / ".join(f"{r.p(s, 0.99):.1f}" if r.ms[s] else "-" for s in ("201", "409")),
                vs,
                r.split or "-",
                r.cpu.describe() if r.cpu else "-",
            ]
        )
    details = format_table(
        ["run", "rounds", "req/s", "answers", "p99 201 / 409 ms", "409 p99 vs same round's", "conns", "CPU cores"],
        detail_lines,
        right={1, 2, 5},
    )
    others = Counter[str]()
    for r in runs:
        others.update({s: n for s, n in r.statuses.items() if s not in ("201", "409")})
    five = sum(n for s, n in others.items() if s.startswith("5"))
    bad = sum(r.bad_slots for r in runs)
    errors = ", ".join(f"{s} x {n:,}" for s, n in sorted(others.items())) or "none"
    first = next((r.first_error for r in runs if r.first_error), "")
    checks = [
        f"contended slots raced: {stored.contended_slots:,} (warm-ups included); with exactly one confirmed booking, "
        f"the one answered 201: {stored.one_each:,}; double bookings: {stored.double}; with none: {stored.empty}; "
        f"rounds without exactly one 201 and {config.clients - 1} 409s (or, uncontended, not all 201): {bad}",
        f"uncontended 201s: {stored.uncontended_answered:,}, stored: {stored.uncontended_stored:,}; bookings no "
        f"client was given a 201 for: {stored.unanswered_rows}",
        f"answers other than 201/409: {errors}" + (f"; first: {first}" if first else ""),
        f"deadlocks PostgreSQL detected in the bench's database: {facts.deadlocks} (pg_stat_database, read after "
        "the service stopped)",
    ]
    r99 = percentile(samples["contended 409"], 0.99) / b99 if b99 else float("inf")
    found = [
        Target(
            f"contended 409 p99 <= {TARGET_RATIO:g}x uncontended 201 p99",
            f"{r99:.2f}x ({percentile(samples['contended 409'], 0.99):.1f} / {b99:.1f} ms)",
            bool(samples["contended 409"]) and r99 <= TARGET_RATIO,
        ),
        Target(
            "exactly one 201 per contended slot, 0 double bookings",
            f"{stored.one_each:,} of {stored.contended_slots:,}, {stored.double} double",
            stored.contended_slots > 0 and stored.one_each == stored.contended_slots and stored.double == 0,
        ),
        Target("0 5xx", f"{five}", five == 0),
    ]
    parts = [
        header,
        "",
        main,
        "",
        "every measured run (409 p99 vs same round's: over the uncontended run of the same round; conns: client "
        "connections per worker; CPU: cores busy)",
        details,
        "",
        *checks,
        "",
        "targets:",
        targets_text(found),
    ]
    if facts.exhausted:
        parts += ["", f"INCOMPLETE: {facts.exhausted}"]
    noisy = [f"{r.name} {r.cpu.other:.2f} ({r.cpu.other_top})" for r in measured if r.cpu and r.cpu.other > 0.2]
    if noisy:
        parts += [
            "",
            "WARNING: other processes on this machine used CPU during the runs (cores: " + "; ".join(noisy) + "); "
            "the latencies are higher than an idle machine would give.",
        ]
    if facts.restarts:
        parts += ["", f"WARNING: uvicorn replaced {facts.restarts} workers during the run (see the server log)."]
    return "\n".join(parts) + "\n"


def parse_args(argv: list[str] | None = None) -> ContentionConfig:
    defaults = ContentionConfig()
    parser = argparse.ArgumentParser(
        prog="python -m bench.contention", description="Benchmark creates racing for the same slot."
    )
    run_arguments(parser, defaults, round_help="runs of each phase, interleaved")
    parser.add_argument("--clients", type=int, default=defaults.clients, help="concurrent clients")
    args = parser.parse_args(argv)
    check_run_arguments(parser, args)
    if not 2 <= args.clients <= 64:
        parser.error("--clients must be 2 to 64")
    return ContentionConfig(
        pg_admin_url=args.pg_url,
        clients=args.clients,
        duration_s=args.duration,
        warmup_s=args.warmup,
        rounds=args.rounds,
        workers=args.workers,
        keep_db=args.keep_db,
    )


def main(argv: list[str] | None = None) -> int:
    try:
        import uvloop  # the event loop uvicorn[standard] brings: the load generator's CPU is the server's loss

        factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    except ImportError:  # pragma: no cover
        factory = asyncio.new_event_loop
    return run_until_done(Bench(parse_args(argv), Progress()).run(), factory)


if __name__ == "__main__":
    sys.exit(main())
