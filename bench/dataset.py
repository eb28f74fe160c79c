"""The bench's own PostgreSQL database: created, migrated, filled with set-based SQL, explained, dropped.

The past history is one deterministic sequence of rows ``i = 0 .. past_count - 1``: row ``i`` books provider
``p = i mod P`` for one hour, ``i div P + 1`` spacings before the anchor, minus ``p / P`` of a spacing (so the
providers' schedules are staggered evenly, not in step), and no provider has two overlapping confirmed bookings.
The small table (list latency at ~10,000 rows) is the rows with ``i mod 100 = 0``; the bulk load adds all the
others, so both tables cover the same two years with the same share of rows per user, only 100 times sparser.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from bench.config import PROJECT_DIR, BenchConfig

BOOKING_MINUTES = 60
SLOT = timedelta(minutes=30)  # what a create books
LONGEST = timedelta(minutes=1440)  # the service's default max_booking_minutes: the upcoming query's window

BOOKING_COLUMNS = (
    "id, user_id, provider_id, start_time, end_time, status, notes, cancel_reason, version, created_at, updated_at"
)

# The shapes of src/bookings/bookings/repository.py, as SQLAlchemy renders them for PostgreSQL.
GET_SQL = f"SELECT {BOOKING_COLUMNS} FROM bookings WHERE bookings.user_id = $1 AND bookings.id = $2"
UPCOMING_SQL = (
    f"SELECT {BOOKING_COLUMNS} FROM bookings "
    "WHERE bookings.user_id = $1 AND bookings.start_time > $2 AND bookings.end_time > $3 "
    "ORDER BY bookings.start_time ASC, bookings.id ASC LIMIT $4 OFFSET $5"
)
UPCOMING_COUNT_SQL = (
    "SELECT count(*) AS count_1 FROM bookings "
    "WHERE bookings.user_id = $1 AND bookings.start_time > $2 AND bookings.end_time > $3"
)
# Without buffers a booking blocks its own times (blocked_start/blocked_end, on which the overlap rule acts).
INSERT_COLUMNS = f"{BOOKING_COLUMNS}, blocked_start, blocked_end"
INSERT_SQL = f"INSERT INTO bookings ({INSERT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $4, $5)"


def provider_uuid_sql(expr: str) -> str:
    return f"md5('bench-provider-' || ({expr}))::uuid"


def user_uuid_sql(expr: str) -> str:
    return f"md5('bench-user-' || ({expr}))::uuid"


@dataclass(frozen=True, slots=True)
class HistoryPlan:
    """Where the past bookings sit in time."""

    anchor: datetime  # every past booking ends at least one spacing before this
    spacing_seconds: int
    per_provider: int

    @classmethod
    def for_config(cls, config: BenchConfig, now: datetime) -> HistoryPlan:
        per_provider = -(-config.past_count // config.providers)
        spacing = config.history_days * 86_400 // per_provider
        if spacing < 2 * BOOKING_MINUTES * 60:
            raise ValueError(f"{per_provider} bookings per provider do not fit in {config.history_days} days")
        anchor = now.replace(second=0, microsecond=0) - timedelta(hours=1)
        return cls(anchor=anchor, spacing_seconds=spacing, per_provider=per_provider)


class BenchDatabase:
    def __init__(self, admin_url: str, name: str) -> None:
        self.admin_url = admin_url
        self.name = name

    @property
    def url(self) -> str:
        return f"{self.admin_url.rsplit('/', 1)[0]}/{self.name}"

    @classmethod
    async def create(cls, admin_url: str) -> BenchDatabase:
        db = cls(admin_url, f"bookings_bench_{secrets.token_hex(4)}")
        admin = await asyncpg.connect(admin_url)
        try:
            await admin.execute(f'CREATE DATABASE "{db.name}"')
        finally:
            await admin.close()
        return db

    def migrate(self) -> None:
        """``uv run bookings migrate`` against this database (the project's own migrations)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("BOOKINGS_")}
        env["BOOKINGS_DATABASE_URL"] = self.url
        command = bookings_command("migrate")
        done = subprocess.run(command, env=env, cwd=PROJECT_DIR, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"migration failed:\n{done.stdout}\n{done.stderr}")

    async def connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.url)

    async def drop(self) -> None:
        admin = await asyncpg.connect(self.admin_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        finally:
            await admin.close()

    async def release(self, *, keep: bool, say: Callable[[str], None]) -> None:
        """At the end of a run: keep the database for a look (``--keep-db``), or drop it; say which."""
        if keep:
            say(f"kept database {self.name} ({self.url})")
        else:
            await self.drop()
            say(f"dropped database {self.name}")


def bookings_command(*args: str) -> list[str]:
    """``uv run bookings ...`` as the brief has it; the venv's interpreter if uv is not on the PATH."""
    if shutil.which("uv"):
        return ["uv", "run", "--frozen", "bookings", *args]
    return [sys.executable, "-m", "bookings", *args]


async def load_people(conn: asyncpg.Connection, config: BenchConfig, password_hash: str) -> None:
    """Providers and users in two statements, all with one real argon2 hash copied from a registered user."""
    for prefix, role, count in (("provider", "provider", config.providers), ("user", "user", config.users)):
        await conn.execute(
            f"""
            INSERT INTO users (id, email, name, role, password_hash, created_at)
            SELECT md5('bench-{prefix}-' || n)::uuid, 'bench-{prefix}-' || n || '@example.com',
                   initcap('{prefix} ') || n, '{role}', $1, now() - interval '800 days'
            FROM generate_series(0, {count - 1}) AS n
            """,
            password_hash,
        )


def _past_sql(config: BenchConfig, plan: HistoryPlan, where: str) -> str:
    p = config.providers
    share = config.list_share
    # Within a block of 100 rows (one small-table row and 99 bulk rows) every row has the same owner class;
    # one block in `share` belongs to a list user, cycling over the list users block after block.
    owner = (
        f"CASE WHEN (i / 100) % {share} = 7 THEN ($2::uuid[])[1 + (i / {100 * share}) % {config.list_users}] "
        f"ELSE {user_uuid_sql(f'(i * 7919) % {config.users}')} END"
    )
    spacing = plan.spacing_seconds
    start = f"$1::timestamptz - (((i / {p}) + 1) * {spacing} + (i % {p}) * {spacing} / {p}) * interval '1 second'"
    return f"""
        INSERT INTO bookings ({INSERT_COLUMNS})
        SELECT gen_random_uuid(), {owner}, {provider_uuid_sql(f"i % {p}")},
               s.start_time, s.start_time + interval '{BOOKING_MINUTES} minutes', 'confirmed', NULL, NULL, 1,
               s.start_time - interval '3 days', s.start_time - interval '3 days',
               s.start_time, s.start_time + interval '{BOOKING_MINUTES} minutes'
        FROM generate_series(0::bigint, {config.past_count - 1}) AS i
        CROSS JOIN LATERAL (SELECT {start} AS start_time) AS s
        WHERE {where}
    """


async def load_small_history(
    conn: asyncpg.Connection, config: BenchConfig, plan: HistoryPlan, list_users: list[uuid.UUID]
) -> None:
    await conn.execute(_past_sql(config, plan, f"i % {config.small_every} = 0"), plan.anchor, list_users)


async def load_bulk_history(
    url: str, config: BenchConfig, plan: HistoryPlan, list_users: list[uuid.UUID], parallel: int = 2
) -> None:
    """The rest of the history, split by provider over ``parallel`` connections (disjoint providers)."""

    async def part(k: int) -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("SET synchronous_commit = off")
            where = f"i % {config.small_every} <> 0 AND (i % {config.providers}) % {parallel} = {k}"
            await conn.execute(_past_sql(config, plan, where), plan.anchor, list_users, timeout=1800)
        finally:
            await conn.close()

    await asyncio.gather(*(part(k) for k in range(parallel)))


async def load_upcoming(
    conn: asyncpg.Connection, config: BenchConfig, now: datetime, list_users: list[uuid.UUID]
) -> None:
    """Each list user gets ``upcoming_per_list_user`` future bookings, 12 hours apart, each with its own provider."""
    k = config.upcoming_per_list_user
    if config.upcoming_count > config.providers:
        raise ValueError("more upcoming bookings than providers")
    await conn.execute(
        f"""
        INSERT INTO bookings ({INSERT_COLUMNS})
        SELECT gen_random_uuid(), ($2::uuid[])[1 + j], {provider_uuid_sql(f"j * {k} + m")},
               s.start_time, s.start_time + interval '{BOOKING_MINUTES} minutes', 'confirmed', NULL, NULL, 1, $1, $1,
               s.start_time, s.start_time + interval '{BOOKING_MINUTES} minutes'
        FROM generate_series(0, {config.list_users - 1}) AS j
        CROSS JOIN generate_series(0, {k - 1}) AS m
        CROSS JOIN LATERAL (
            SELECT date_trunc('hour', $1::timestamptz) + interval '1 day' + m * interval '12 hours'
                   + j * interval '5 minutes' AS start_time
        ) AS s
        """,
        now,
        list_users,
    )


async def provider_ids(conn: asyncpg.Connection, config: BenchConfig) -> list[str]:
    rows = await conn.fetch(
        f"SELECT {provider_uuid_sql('n')}::text AS id FROM generate_series(0, {config.providers - 1}) AS n"
    )
    return [row["id"] for row in rows]


async def owned_bookings(conn: asyncpg.Connection, users: list[uuid.UUID], count: int) -> list[tuple[str, str]]:
    """``count`` random (booking id, user id) pairs of the given users' bookings."""
    rows = await conn.fetch(
        "SELECT id::text AS id, user_id::text AS user_id FROM bookings WHERE user_id = ANY($1::uuid[]) "
        "ORDER BY random() LIMIT $2",
        users,
        count,
    )
    return [(row["id"], row["user_id"]) for row in rows]


async def count_bookings(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM bookings"))


async def user_profile(conn: asyncpg.Connection, user_id: uuid.UUID) -> tuple[int, int]:
    """(past, upcoming) bookings of one user."""
    row = await conn.fetchrow(
        "SELECT count(*) FILTER (WHERE end_time <= now()) AS past, count(*) FILTER (WHERE end_time > now()) AS up "
        "FROM bookings WHERE user_id = $1",
        user_id,
    )
    assert row is not None
    return int(row["past"]), int(row["up"])


async def time_upcoming(conn: asyncpg.Connection, users: list[uuid.UUID], rounds: int = 400) -> tuple[float, float]:
    """(p50, p99) in ms of the upcoming page (+ count when full), one query after another on one connection.

    The database's side of the list scenario without HTTP or concurrency: much less sensitive to other work on
    the machine than the HTTP figures, so it shows on its own whether the query's cost grows with the history.
    """
    timings: list[float] = []
    for i in range(rounds):
        user_id = users[i % len(users)]
        now = datetime.now(UTC)
        started = time.perf_counter()
        rows = await conn.fetch(UPCOMING_SQL, user_id, now - LONGEST, now, 20, 0)
        if len(rows) == 20:
            await conn.fetchval(UPCOMING_COUNT_SQL, user_id, now - LONGEST, now)
        timings.append((time.perf_counter() - started) * 1000)
    timings = sorted(timings[rounds // 4 :])  # the first quarter warms the statement cache and the buffers
    return timings[len(timings) // 2], timings[min(len(timings) - 1, round(0.99 * (len(timings) - 1)))]


async def explain_upcoming(conn: asyncpg.Connection, user_id: uuid.UUID) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the upcoming page and its count, with a custom and with a generic plan.

    psycopg prepares a statement on its fifth execution on a connection; from then on PostgreSQL may run a
    generic plan (parameters unknown at planning time), so both are shown.
    """
    now = datetime.now(UTC)
    args = (user_id, now - LONGEST, now)
    sections: list[str] = []
    await conn.execute("SET plan_cache_mode = auto")
    for title, sql, extra in (
        ("upcoming page (custom plan: parameters known)", UPCOMING_SQL, (20, 0)),
        ("upcoming count (custom plan)", UPCOMING_COUNT_SQL, ()),
    ):
        rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", *args, *extra)
        sections.append(f"-- {title}\n" + _lines(rows))
    # A generic plan, as a prepared statement gets once PostgreSQL decides the custom ones are not worth it.
    literals = f"'{user_id}'::uuid, '{(now - LONGEST).isoformat()}'::timestamptz, '{now.isoformat()}'::timestamptz"
    await conn.execute(f"PREPARE bench_upcoming(uuid, timestamptz, timestamptz, int, int) AS {UPCOMING_SQL}")
    try:
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_upcoming({literals}, 20, 0)")
        sections.append("-- upcoming page (generic plan: what a prepared statement may use)\n" + _lines(rows))
    finally:
        await conn.execute("DEALLOCATE bench_upcoming")
        await conn.execute("SET plan_cache_mode = auto")
    return "\n\n".join(sections)


async def explain_overlap(conn: asyncpg.Connection, provider_id: str, start: datetime, sql: str) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of an overlap check (``sql``: provider, start, end) for a free half hour."""
    rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", uuid.UUID(provider_id), start, start + SLOT)
    return _lines(rows)


def _lines(rows: list[asyncpg.Record]) -> str:
    return "\n".join(row[0] for row in rows)
