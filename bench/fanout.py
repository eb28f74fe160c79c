"""``python -m bench.fanout``: real-time fan-out in distributed mode.

Two API instances (``bookings serve --workers 1`` each) share PostgreSQL and a private ``redis-server``. WebSocket
clients (``bench.wsclients``, one uvloop process) connect to ``/ws`` spread evenly over the instances, then the
bench books 100 slots a second through ``POST /v1/bookings`` (open loop, alternating instances) and checks, event
by event, that every ``booking.created`` reached exactly the sockets it should (its user, its provider, the admins)
and how long after its ``occurredAt`` each arrived. A baseline with 10 sockets runs first, in the same run, so
the table shows what 1,000 sockets cost over 10. Between the two, the instances' memory is read before and after
the 1,000 idle sockets connect.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import redis.asyncio as aioredis
from websockets.version import version as websockets_version

from bench.cluster import (
    ApiInstance,
    Deployment,
    GroupMeter,
    GroupUsage,
    RedisServer,
    busy_warning,
    format_table,
    fresh_database,
    insert_people,
    mint_token,
    percentile,
    person_id,
    postgres_version,
    ratio,
    rss_of,
    run_until_done,
    start_backends,
    transactions,
)
from bench.config import DEFAULT_PG_ADMIN_URL, RESULTS_DIR
from bench.dataset import BenchDatabase
from bench.report import Target, targets_text
from bench.runner import Progress, git_commit
from bench.server import check_request, register_and_login
from bench.wsclients import Fleet

TARGET_P99_MS = 100.0
TARGET_KIB_PER_CONNECTION = 50.0
INSTANCES = 2
SLOT = timedelta(minutes=30)
BOOKINGS_AHEAD = timedelta(days=30)  # every booking starts a month ahead: its reminder (lead below) is far off
REMINDER_LEAD_SECONDS = 3600  # no worker runs in this bench, and no reminder falls due before the bookings start
HTTP_TIMEOUT_S = 10.0
MAX_IN_FLIGHT = 400  # an open loop, but bounded: past this many unanswered requests, a send is skipped (counted)
RELAY_IDLE_TIMEOUT_S = 20.0
IDLE_SETTLE_S = 3.0  # after the sockets connect, before their memory is read


@dataclass(frozen=True, slots=True)
class FanoutConfig:
    pg_admin_url: str = DEFAULT_PG_ADMIN_URL
    clients: int = 1_000
    baseline_clients: int = 10
    admins: int = 2
    rate: float = 100.0  # bookings per second
    duration_s: float = 30.0
    baseline_s: float = 10.0
    drain_s: float = 15.0  # after the load, how long the clients may take to receive everything
    compression: bool = True  # offer permessage-deflate, as browsers do
    keep_db: bool = False


@dataclass(frozen=True, slots=True)
class Socket:
    key: int
    user_id: uuid.UUID
    role: str
    instance: int
    token: str


@dataclass(frozen=True, slots=True)
class Planned:
    instance: int
    token: str
    body: dict[str, str]


@dataclass
class LoadOutcome:
    planned: int = 0
    sent: int = 0
    skipped: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    http_ms: list[float] = field(default_factory=list)
    created: set[str] = field(default_factory=set)
    first_error: str = ""
    began: float = 0.0
    ended: float = 0.0
    send_lag_max_ms: float = 0.0

    @property
    def ok(self) -> int:
        return self.statuses.get("201", 0)

    @property
    def ok_rate(self) -> float:
        return self.ok / (self.ended - self.began) if self.ended > self.began else 0.0

    def describe_statuses(self) -> str:
        parts = [f"{code} x {n:,}" for code, n in sorted(self.statuses.items())]
        if self.skipped:
            parts.append(f"skipped (over {MAX_IN_FLIGHT} in flight) x {self.skipped:,}")
        return ", ".join(parts) or "none"


@dataclass
class PhaseResult:
    name: str
    sockets: int
    split: str
    load: LoadOutcome
    events: int = 0
    reminders: int = 0
    expected: int = 0
    received: int = 0  # distinct expected (socket, event) pairs that arrived
    lost: int = 0
    duplicates: int = 0
    strays: int = 0  # events a socket received but should not have seen
    latencies: list[float] = field(default_factory=list)  # ms, sorted
    relay_mean_ms: float = 0.0
    bus: list[float] = field(default_factory=list)  # ms from occurredAt to the event on the Redis Stream, sorted
    after_bus: list[float] = field(default_factory=list)  # ms from the Redis Stream to the client, per delivery
    without_event: int = 0  # bookings that answered 201 but have no event (invariant 3 broken)
    cpu: GroupUsage | None = None
    transactions: int = 0  # PostgreSQL transactions in the bench's database during the load and its drain
    client: dict[str, Any] = field(default_factory=dict)
    client_rss: int = 0

    def p(self, q: float) -> float:
        return percentile(self.latencies, q)


@dataclass
class Memory:
    before: list[int] = field(default_factory=list)  # RSS per API instance, bytes
    after: list[int] = field(default_factory=list)
    per_instance: list[int] = field(default_factory=list)  # sockets connected to each instance

    @property
    def kib_per_connection(self) -> float:
        connections = sum(self.per_instance)
        return (sum(self.after) - sum(self.before)) / 1024 / connections if connections else 0.0


class People:
    """The accounts behind the sockets: admins, users and providers, ids computable on both sides."""

    def __init__(self, secret: str, config: FanoutConfig) -> None:
        self.secret = secret
        self.users = (config.clients - config.admins) // 2
        self.providers = config.clients - config.admins - self.users
        self.admins = config.admins
        self._tokens: dict[uuid.UUID, str] = {}

    def token(self, user_id: uuid.UUID, role: str) -> str:
        if user_id not in self._tokens:
            self._tokens[user_id] = mint_token(self.secret, user_id, role)
        return self._tokens[user_id]

    def sockets(self, admins: int, users: int, providers: int) -> list[Socket]:
        """Admin n on instance n mod 2, user j on j mod 2, provider j on (j + 1) mod 2: an even split."""
        found: list[Socket] = []
        for n in range(admins):
            found.append(self._socket(len(found), "fan-admin", n, "admin", n % INSTANCES))
        for j in range(users):
            found.append(self._socket(len(found), "fan-user", j, "user", j % INSTANCES))
        for j in range(providers):
            found.append(self._socket(len(found), "fan-provider", j, "provider", (j + 1) % INSTANCES))
        return found

    def _socket(self, key: int, prefix: str, n: int, role: str, instance: int) -> Socket:
        user_id = person_id(prefix, n)
        return Socket(key, user_id, role, instance, self.token(user_id, role))


class Planner:
    """Booking requests: user ``i mod U`` books provider ``(i + i div U) mod P`` in that provider's next free slot."""

    def __init__(self, people: People, now: datetime) -> None:
        self.people = people
        self.base = now.replace(minute=0, second=0, microsecond=0) + BOOKINGS_AHEAD
        self.next_slot: Counter[int] = Counter()

    def plan(self, count: int, users: int, providers: int) -> list[Planned]:
        plans: list[Planned] = []
        for i in range(count):
            u, p = i % users, (i + i // users) % providers
            start = self.base + self.next_slot[p] * SLOT
            self.next_slot[p] += 1
            body = {
                "providerId": str(person_id("fan-provider", p)),
                "startTime": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "endTime": (start + SLOT).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            plans.append(Planned(i % INSTANCES, self.people.token(person_id("fan-user", u), "user"), body))
        return plans


async def run_load(clients: Sequence[httpx.AsyncClient], plans: Sequence[Planned], rate: float) -> LoadOutcome:
    """Open loop: request ``i`` leaves at ``start + i / rate`` whether or not the earlier ones have answered."""
    outcome = LoadOutcome(planned=len(plans))
    in_flight: set[asyncio.Task[None]] = set()

    async def send(plan: Planned) -> None:
        started = time.perf_counter()
        try:
            response = await clients[plan.instance].post(
                "/v1/bookings", json=plan.body, headers={"Authorization": f"Bearer {plan.token}"}
            )
        except httpx.HTTPError as exc:
            outcome.statuses[type(exc).__name__] += 1
            outcome.first_error = outcome.first_error or f"{type(exc).__name__}: {exc}"
        else:
            outcome.statuses[str(response.status_code)] += 1
            if response.status_code == 201:
                outcome.http_ms.append((time.perf_counter() - started) * 1000)
                outcome.created.add(response.json()["id"])
            elif not outcome.first_error:
                outcome.first_error = f"{response.status_code} {response.text[:300]}"
        outcome.ended = max(outcome.ended, time.perf_counter())

    outcome.began = start = time.perf_counter() + 0.05
    for i, plan in enumerate(plans):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            outcome.send_lag_max_ms = max(outcome.send_lag_max_ms, -delay * 1000)
        if len(in_flight) >= MAX_IN_FLIGHT:
            outcome.skipped += 1
            continue
        task = asyncio.create_task(send(plan))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
        outcome.sent += 1
    if in_flight:
        await asyncio.wait(in_flight, timeout=HTTP_TIMEOUT_S + 5)
    outcome.http_ms.sort()
    return outcome


class BusTap:
    """Reads the deployment's Redis Stream as each instance's hub does, noting when every event got there.

    The bus latency (on the stream, minus occurredAt) is the relay's part of the delivery latency: the commit,
    the relay noticing it (NOTIFY), numbering the event and publishing it. The rest is the instances' part:
    reading the stream, routing the event, sending it on the socket, and the client reading it.
    """

    def __init__(self, url: str, prefix: str) -> None:
        self._redis = aioredis.from_url(url)
        self._stream = f"{prefix}:events"
        self.seen: dict[int, float] = {}  # event id -> ms after its occurredAt
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        newest: Any = await self._redis.xrevrange(self._stream, count=1)
        self._task = asyncio.create_task(self._read(newest[0][0] if newest else b"0-0"))

    async def _read(self, last: Any) -> None:
        while True:
            batches: Any = await self._redis.xread({self._stream: last}, block=1000, count=500)
            now = time.time()
            for _stream, entries in batches or []:
                for entry_id, fields in entries:
                    last = entry_id
                    event = json.loads(fields[b"e"])
                    occurred = datetime.fromisoformat(event["occurred_at"]).timestamp()
                    self.seen[int(event["id"])] = (now - occurred) * 1000

    def latencies(self, ids: Sequence[int]) -> list[float]:
        return sorted(self.seen[i] for i in ids if i in self.seen)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._redis.aclose()


async def wait_relay_idle(conn: asyncpg.Connection) -> None:
    """Until every committed event has its public id and the relay's bookmark has reached the last one."""
    deadline = time.monotonic() + RELAY_IDLE_TIMEOUT_S
    while time.monotonic() < deadline:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM events WHERE id IS NULL) AS unnumbered, "
            "(SELECT coalesce(max(id), 0) FROM events) AS top, "
            "(SELECT coalesce(max(published_through), 0) FROM relay_state) AS published"
        )
        assert row is not None
        if row["unnumbered"] == 0 and row["published"] >= row["top"]:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"the relay did not publish every event within {RELAY_IDLE_TIMEOUT_S:.0f} s")


async def relay_lag(apis: Sequence[ApiInstance]) -> tuple[float, float]:
    """(sum of seconds, count) of the relay-lag histogram over the instances (only the leader relays)."""
    total, count = 0.0, 0.0
    for api in apis:
        metrics = await api.metrics()
        total += float(metrics.get("bookings_relay_lag_seconds_sum", 0.0))
        count += float(metrics.get("bookings_relay_lag_seconds_count", 0.0))
    return total, count


async def ws_split(apis: Sequence[ApiInstance]) -> list[int]:
    return [int((await api.metrics()).get("bookings_ws_clients", 0)) for api in apis]


class Bench:
    def __init__(self, config: FanoutConfig, say: Progress) -> None:
        self.config = config
        self.say = say
        self.apis: list[ApiInstance] = []
        self.redis = RedisServer()
        self.conn: asyncpg.Connection | None = None
        self.db_name = ""
        self.fleets: list[Fleet] = []
        self.http: list[httpx.AsyncClient] = []
        self.extensions = ""
        self.tap: BusTap | None = None

    async def connect_fleet(self, name: str, sockets: Sequence[Socket]) -> Fleet:
        by_instance = [self.apis[s.instance] for s in sockets]
        # The token goes in the subprotocols (bench.wsclients offers bookings.v1 and bearer.<token>), not the URL.
        specs = [(s.key, api.ws_url, s.token) for s, api in zip(sockets, by_instance, strict=True)]
        fleet = Fleet(
            specs,
            RESULTS_DIR / f"fanout-{name}-receipts.json",
            RESULTS_DIR / "fanout-clients.log",
            compression=self.config.compression,
        )
        self.fleets.append(fleet)
        opened = await fleet.start()
        if opened["failed"]:
            raise RuntimeError(f"{opened['failed']} of {len(sockets)} sockets did not connect: {opened['error']}")
        self.say(
            f"{opened['connected']:,} sockets connected in {opened['seconds']:.1f} s"
            f" (extensions: {opened['extensions'] or 'none'})"
        )
        self.extensions = str(opened["extensions"])
        return fleet

    async def phase(
        self, name: str, fleet: Fleet, sockets: Sequence[Socket], plans: Sequence[Planned], seconds: float
    ) -> PhaseResult:
        assert self.conn is not None
        split = await ws_split(self.apis)
        result = PhaseResult(name, len(sockets), "/".join(map(str, split)), LoadOutcome())
        if sum(split) != len(sockets):
            raise RuntimeError(f"{name}: the instances count {split} sockets, not {len(sockets)}")
        await wait_relay_idle(self.conn)
        id_before = int(await self.conn.fetchval("SELECT coalesce(max(id), 0) FROM events"))
        lag_before = await relay_lag(self.apis)
        meter = GroupMeter(
            self.db_name,
            {f"api-{n + 1}": api.pgid for n, api in enumerate(self.apis)},
            {"redis": self.redis.pid, "clients": fleet.pid},
        )
        xacts_before = await transactions(self.conn)
        await fleet.mark()
        self.say(f"{name}: {len(plans):,} bookings at {self.config.rate:g}/s for {seconds:g} s")
        meter.start()
        result.load = await run_load(self.http, plans, self.config.rate)
        result.cpu = meter.stop()
        await wait_relay_idle(self.conn)
        lag_after = await relay_lag(self.apis)
        if lag_after[1] > lag_before[1]:
            result.relay_mean_ms = (lag_after[0] - lag_before[0]) / (lag_after[1] - lag_before[1]) * 1000

        events = await self.conn.fetch(
            "SELECT id, type, booking_id::text AS booking_id, user_id, provider_id FROM events WHERE id > $1",
            id_before,
        )
        assert self.tap is not None
        result.bus = self.tap.latencies([int(e["id"]) for e in events])
        result.events = sum(1 for e in events if e["type"] == "booking.created")
        result.reminders = sum(1 for e in events if e["type"] == "booking.reminder")
        result.without_event = len(result.load.created - {e["booking_id"] for e in events})
        admins = [s.key for s in sockets if s.role == "admin"]
        by_user: dict[uuid.UUID, list[int]] = {}
        for s in sockets:
            by_user.setdefault(s.user_id, []).append(s.key)
        expected: set[tuple[int, int]] = set()
        for e in events:
            for key in [*admins, *by_user.get(e["user_id"], []), *by_user.get(e["provider_id"], [])]:
                expected.add((key, int(e["id"])))
        result.expected = len(expected)

        summary, receipts = await fleet.drain(len(expected), self.config.drain_s)
        result.transactions = await transactions(self.conn) - xacts_before
        result.client = summary
        result.client_rss = rss_of(fleet.pid)
        seen: dict[tuple[int, int], float] = {}
        for key, event_id, latency in receipts:
            pair = (key, event_id)
            if pair in seen:
                result.duplicates += 1
            else:
                seen[pair] = latency
        result.received = len(expected & seen.keys())
        result.lost = len(expected - seen.keys())
        result.strays = len(seen.keys() - expected)
        result.latencies = sorted(latency for pair, latency in seen.items() if pair in expected)
        on_bus = self.tap.seen
        result.after_bus = sorted(
            ms - on_bus[pair[1]] for pair, ms in seen.items() if pair in expected and pair[1] in on_bus
        )
        self.say(_summary(result))
        return result

    async def run(self) -> int:
        config = self.config
        RESULTS_DIR.mkdir(exist_ok=True)
        (RESULTS_DIR / "fanout-clients.log").write_bytes(b"")  # both client processes of this run append to it
        idle, db = await fresh_database(self.say, config.pg_admin_url)
        self.db_name = db.name
        try:
            deployment = await start_backends(self.say, db, self.redis, REMINDER_LEAD_SECONDS)
            self.apis = [ApiInstance(deployment, RESULTS_DIR / f"fanout-api-{n + 1}.log") for n in range(INSTANCES)]
            await asyncio.gather(*(api.start() for api in self.apis))
            self.tap = BusTap(self.redis.url, deployment.redis_prefix)
            await self.tap.start()
            self.say(f"2 API instances up: {', '.join(api.url for api in self.apis)} (--workers 1 each)")
            return await self._measure(db, deployment, idle)
        finally:
            await self._clean_up(db)

    async def _measure(self, db: BenchDatabase, deployment: Deployment, idle: float) -> int:
        config = self.config
        self.conn = conn = await db.connect()
        (registered,) = await register_and_login(self.apis[0].url, ["fan-registered@example.com"])
        password_hash = await conn.fetchval("SELECT password_hash FROM users WHERE id = $1", registered.user_id)
        people = People(deployment.jwt_secret, config)
        await insert_people(conn, "fan-admin", "admin", people.admins, password_hash)
        await insert_people(conn, "fan-user", "user", people.users, password_hash)
        await insert_people(conn, "fan-provider", "provider", people.providers, password_hash)
        await conn.execute("ANALYZE")
        minted = people.token(person_id("fan-user", 0), "user")
        await check_request(self.apis[1].url, "GET", "/v1/users/me", minted, 200)
        self.say(
            f"{people.admins} admins, {people.users:,} users, {people.providers:,} providers inserted with the hash"
            " of one registered account; minted tokens accepted"
        )
        planner = Planner(people, datetime.now(UTC))
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        self.http = [httpx.AsyncClient(base_url=api.url, timeout=HTTP_TIMEOUT_S, limits=limits) for api in self.apis]
        warm = planner.plan(20, 2, 2)  # opens the HTTP connections and warms both instances' code paths
        await run_load(self.http, warm, 50.0)

        small_users = small_providers = (config.baseline_clients - config.admins) // 2
        sockets = people.sockets(config.admins, small_users, small_providers)
        fleet = await self.connect_fleet("baseline", sockets)
        plans = planner.plan(round(config.rate * config.baseline_s), small_users, small_providers)
        baseline = await self.phase(f"baseline, {len(sockets)} sockets", fleet, sockets, plans, config.baseline_s)
        await fleet.close()
        await asyncio.sleep(1.0)

        memory = Memory(before=[api.rss_bytes() for api in self.apis])
        sockets = people.sockets(config.admins, people.users, people.providers)
        fleet = await self.connect_fleet("main", sockets)
        await asyncio.sleep(IDLE_SETTLE_S)
        memory.after = [api.rss_bytes() for api in self.apis]
        memory.per_instance = await ws_split(self.apis)
        self.say(
            "idle sockets: RSS "
            + ", ".join(
                f"api-{n + 1} {b / 2**20:.1f} -> {a / 2**20:.1f} MiB"
                for n, (b, a) in enumerate(zip(memory.before, memory.after, strict=True))
            )
            + f"; {memory.kib_per_connection:.1f} KiB per connection"
        )
        plans = planner.plan(round(config.rate * config.duration_s), people.users, people.providers)
        main = await self.phase(f"fan-out, {len(sockets):,} sockets", fleet, sockets, plans, config.duration_s)

        report = compose(
            config,
            Facts(idle, await postgres_version(conn), self.redis.version, git_commit(), self.extensions),
            baseline,
            main,
            memory,
        )
        print("\n" + report)
        elapsed = self.say.elapsed
        (RESULTS_DIR / "fanout.txt").write_text(f"{report}\nrun time: {elapsed:.0f} s\n")
        self.say(f"done in {elapsed:.0f} s; saved to {RESULTS_DIR / 'fanout.txt'}")
        invalid = [r for r in (baseline, main) if r.load.ok != r.load.planned]
        if invalid:
            print("INVALID RUN: not every booking request answered 201 (see the statuses above)")
            return 1
        return 0

    async def _clean_up(self, db: BenchDatabase) -> None:
        for fleet in self.fleets:
            await fleet.close()
        for client in self.http:
            await client.aclose()
        if self.tap is not None:
            await self.tap.stop()
        await asyncio.gather(*(api.stop() for api in self.apis), return_exceptions=True)
        await self.redis.stop()
        if self.conn is not None:
            await self.conn.close()
        await db.release(keep=self.config.keep_db, say=self.say)


def _summary(r: PhaseResult) -> str:
    return (
        f"{r.name}: {r.load.ok:,} of {r.load.planned:,} bookings at {r.load.ok_rate:.1f}/s; "
        f"{r.received:,}/{r.expected:,} deliveries, {r.lost} lost, {r.duplicates} duplicates, {r.strays} strays; "
        f"latency p50 {r.p(0.5):.1f} ms, p99 {r.p(0.99):.1f} ms, max {r.p(1.0):.1f} ms "
        f"(on the bus: p50 {percentile(r.bus, 0.5):.1f}, p99 {percentile(r.bus, 0.99):.1f}); "
        f"cores: {r.cpu.describe() if r.cpu else '-'}"
    )


@dataclass(frozen=True, slots=True)
class Facts:
    idle_load: float
    postgres: str
    redis: str
    commit: str
    extensions: str


def compose(config: FanoutConfig, facts: Facts, baseline: PhaseResult, main: PhaseResult, memory: Memory) -> str:
    header = (
        f"bookings fan-out benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {facts.commit}, "
        f"{os.cpu_count()} cores ({facts.idle_load:.2f} busy with other work before the run), "
        f"PostgreSQL {facts.postgres}, Redis {facts.redis}\n"
        f"service: {INSTANCES} x `bookings serve --workers 1` (distributed: PostgreSQL + a private redis-server), "
        "BOOKINGS_LOG_LEVEL=WARNING; no `bookings worker` (no job runs)\n"
        f"load: {config.rate:g} POST /v1/bookings per second, open loop, alternating instances, "
        f"{config.duration_s:g} s ({config.baseline_s:g} s for the baseline); "
        f"clients: one uvloop process, websockets {websockets_version}, "
        f"extensions negotiated: {facts.extensions or 'none'}\n"
        "latency: the client's clock when it reads the event minus the event's occurredAt (the service's clock "
        "at the start of the booking's transaction, so the commit itself is included)"
    )
    rows = [_row(baseline, None), _row(main, baseline)]
    delivery = format_table(
        [
            "phase",
            "sockets",
            "bookings ok",
            "ok/s",
            "HTTP p50/p99 ms",
            "expected",
            "received",
            "lost",
            "dup",
            "strays",
            "on bus p50/p99 ms",
            "p50 ms",
            "p99 ms",
            "max ms",
            "vs baseline p50, p99",
        ],
        rows,
        right={2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13},
    )
    cpu_rows = [
        [r.name, r.cpu.describe() if r.cpu else "-", f"{r.transactions / max(1, r.load.ok):.1f}"]
        for r in (baseline, main)
    ]
    cpu = format_table(["phase", "CPU cores during the load", "pg transactions per booking"], cpu_rows, right={2})
    lines = [
        header,
        "",
        delivery,
        "",
        cpu,
        "",
        "on bus: when the event reached the Redis Stream (read by the bench like a hub), minus occurredAt: the "
        "relay's share of the latency (the service's own relay-lag histogram, mean: "
        f"baseline {baseline.relay_mean_ms:.1f} ms, fan-out {main.relay_mean_ms:.1f} ms)",
        f"bookings answered 201 without an event: {baseline.without_event + main.without_event}",
        f"HTTP statuses: baseline {baseline.load.describe_statuses()}; fan-out {main.load.describe_statuses()}"
        + (f"; first error: {main.load.first_error or baseline.load.first_error}" if _errors(baseline, main) else ""),
        _memory_line(memory),
        _client_line(baseline, main),
        f"booking.reminder events during the runs: {baseline.reminders + main.reminders} (no worker, lead "
        f"{REMINDER_LEAD_SECONDS} s, bookings {BOOKINGS_AHEAD.days} days ahead)",
        "",
        "targets:",
        targets_text(targets(main, memory)),
    ]
    if warning := busy_warning({baseline.name: baseline.cpu, main.name: main.cpu}):
        lines += ["", warning]
    return "\n".join(lines) + "\n"


def _errors(*results: PhaseResult) -> bool:
    return any(r.load.ok != r.load.planned for r in results)


def _row(r: PhaseResult, baseline: PhaseResult | None) -> list[str]:
    vs = "-"
    if baseline is not None:
        vs = f"{ratio(r.p(0.5), baseline.p(0.5))}, {ratio(r.p(0.99), baseline.p(0.99))}"
    http = f"{percentile(r.load.http_ms, 0.5):.1f} / {percentile(r.load.http_ms, 0.99):.1f}"
    return [
        r.name,
        f"{r.sockets:,} ({r.split})",
        f"{r.load.ok:,}/{r.load.planned:,}",
        f"{r.load.ok_rate:.1f}",
        http,
        f"{r.expected:,}",
        f"{r.received:,}",
        str(r.lost),
        str(r.duplicates),
        str(r.strays),
        f"{percentile(r.bus, 0.5):.1f} / {percentile(r.bus, 0.99):.1f}",
        f"{r.p(0.5):.1f}",
        f"{r.p(0.99):.1f}",
        f"{r.p(1.0):.1f}",
        vs,
    ]


def _memory_line(memory: Memory) -> str:
    parts = [
        f"api-{n + 1} {b / 2**20:.1f} -> {a / 2**20:.1f} MiB with {c} sockets ({(a - b) / 1024 / c:.1f} KiB each)"
        for n, (b, a, c) in enumerate(zip(memory.before, memory.after, memory.per_instance, strict=True))
        if c
    ]
    return f"idle sockets (RSS from /proc, {IDLE_SETTLE_S:g} s after connecting): " + "; ".join(parts)


def _client_line(baseline: PhaseResult, main: PhaseResult) -> str:
    cores = main.cpu.groups.get("clients", 0.0) if main.cpu else 0.0
    lag99, lag_max = float(main.client.get("lag_p99_ms", 0.0)), float(main.client.get("lag_max_ms", 0.0))
    per_socket = (main.client_rss - baseline.client_rss) / 1024 / max(1, main.sockets - baseline.sockets)
    after50, after99 = percentile(main.after_bus, 0.5), percentile(main.after_bus, 0.99)
    bottleneck = cores > 0.8 or after99 > TARGET_P99_MS / 2
    verdict = "MAY HAVE BEEN the bottleneck" if bottleneck else "was not the bottleneck"
    return (
        f"from the Redis Stream to the client (the instances' hubs, the sockets, the client's read): p50 "
        f"{after50:.1f} ms, p99 {after99:.1f} ms\n"
        f"client process: {cores:.2f} of a core during the load, event-loop lag p99 {lag99:.1f} ms "
        f"(max {lag_max:.1f}), {per_socket:.1f} KiB per socket; it {verdict}"
    )


def targets(main: PhaseResult, memory: Memory) -> list[Target]:
    return [
        Target(
            f"fan-out p99 <= {TARGET_P99_MS:.0f} ms (commit to client)",
            f"p99 {main.p(0.99):.1f} ms",
            bool(main.latencies) and main.p(0.99) <= TARGET_P99_MS,
        ),
        Target(
            "0 events lost (and 0 strays, 0 bookings without an event)",
            f"{main.lost} lost of {main.expected:,}, {main.strays} strays, {main.without_event} without",
            main.expected > 0 and main.lost == main.strays == main.without_event == 0,
        ),
        Target(
            f"<= {TARGET_KIB_PER_CONNECTION:.0f} KiB per idle connection (server RSS)",
            f"{memory.kib_per_connection:.1f} KiB",
            memory.kib_per_connection <= TARGET_KIB_PER_CONNECTION,
        ),
    ]


def parse_args(argv: list[str] | None = None) -> FanoutConfig:
    defaults = FanoutConfig()
    parser = argparse.ArgumentParser(prog="python -m bench.fanout", description="Benchmark WebSocket fan-out.")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", defaults.pg_admin_url))
    parser.add_argument("--clients", type=int, default=defaults.clients, help="WebSocket sockets (fan-out phase)")
    parser.add_argument("--baseline-clients", type=int, default=defaults.baseline_clients)
    parser.add_argument("--rate", type=float, default=defaults.rate, help="bookings per second")
    parser.add_argument("--duration", type=float, default=defaults.duration_s, help="seconds of load (fan-out)")
    parser.add_argument("--baseline-duration", type=float, default=defaults.baseline_s)
    parser.add_argument("--no-compression", action="store_true", help="do not offer permessage-deflate")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database at the end")
    args = parser.parse_args(argv)
    if not 1 <= args.duration <= 120 or not 1 <= args.baseline_duration <= 120:
        parser.error("durations must be 1 to 120 seconds")
    if not 1 <= args.rate <= 1000:
        parser.error("--rate must be 1 to 1000")
    if not 6 <= args.baseline_clients <= args.clients <= 5000:
        parser.error("need 6 <= --baseline-clients <= --clients <= 5000")
    return FanoutConfig(
        pg_admin_url=args.pg_url,
        clients=args.clients,
        baseline_clients=args.baseline_clients,
        rate=args.rate,
        duration_s=args.duration,
        baseline_s=args.baseline_duration,
        compression=not args.no_compression,
        keep_db=args.keep_db,
    )


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    return run_until_done(Bench(config, Progress()).run())


if __name__ == "__main__":
    sys.exit(main())
