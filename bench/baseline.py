"""The database floor: the service's SQL straight through asyncpg, 32 tasks each on its own connection.

A closed loop like wrk's: each task sends its next query as soon as the previous one answers. It runs in this
Python process, so it shares the two cores with PostgreSQL exactly as the HTTP runs share them with wrk and the
service (a Python client costs more CPU per query than wrk does per request, so the floor is, if anything, low).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta

import asyncpg

from bench.cpu import CpuMeter
from bench.dataset import GET_SQL, INSERT_SQL, LONGEST, UPCOMING_COUNT_SQL, UPCOMING_SQL
from bench.runner import summary
from bench.wrk import LoadResult

Operation = Callable[[asyncpg.Connection, int], Awaitable[None]]


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, round(q * (len(sorted_values) - 1)))]


async def closed_loop(
    pool: asyncpg.Pool, op: Operation, *, name: str, concurrency: int, seconds: float, offset: int = 0
) -> LoadResult:
    """Run ``op(connection, i)`` from ``concurrency`` tasks for ``seconds``; every ``i`` is distinct."""
    latencies: list[float] = []
    errors: list[str] = []
    stop_at = time.perf_counter() + seconds

    async def task(k: int) -> None:
        i = offset + k
        async with pool.acquire() as conn:
            while (started := time.perf_counter()) < stop_at:
                try:
                    await op(conn, i)
                except (asyncpg.PostgresError, OSError) as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                else:
                    latencies.append(time.perf_counter() - started)
                i += concurrency

    began = time.perf_counter()
    await asyncio.gather(*(task(k) for k in range(concurrency)))
    elapsed = time.perf_counter() - began
    latencies.sort()
    return LoadResult(
        name=name,
        requests=len(latencies),
        duration_s=elapsed,
        p50_ms=percentile(latencies, 0.50) * 1000,
        p90_ms=percentile(latencies, 0.90) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        max_ms=(latencies[-1] * 1000) if latencies else 0.0,
        errors=len(errors),
        error_detail=f"first: {errors[0][:200]}" if errors else "",
    )


async def measure(
    pool: asyncpg.Pool,
    op: Operation,
    *,
    name: str,
    database: str,
    concurrency: int,
    warmup_s: float,
    seconds: float,
    offsets: tuple[int, int],
) -> LoadResult:
    """Warm up, then measure (with the CPU meter); the two phases start at ``offsets``: disjoint ranges of ``i``."""
    await closed_loop(pool, op, name=name, concurrency=concurrency, seconds=warmup_s, offset=offsets[0])
    meter = CpuMeter(database, None, "self")
    meter.start()
    result = await closed_loop(pool, op, name=name, concurrency=concurrency, seconds=seconds, offset=offsets[1])
    return dataclasses.replace(result, cpu=meter.stop())


def get_op(pairs: list[tuple[uuid.UUID, uuid.UUID]]) -> Operation:
    """The service's read of one booking: its id, within what the caller may see (its own user id)."""

    async def op(conn: asyncpg.Connection, i: int) -> None:
        booking_id, user_id = pairs[i % len(pairs)]
        row = await conn.fetchrow(GET_SQL, user_id, booking_id)
        if row is None:
            raise asyncpg.NoDataFoundError("booking not found")

    return op


def list_op(users: list[uuid.UUID], limit: int = 20) -> Operation:
    """The upcoming page, and the count when the page is full (as repository.list_visible does)."""

    async def op(conn: asyncpg.Connection, i: int) -> None:
        user_id = users[i % len(users)]
        now = datetime.now(UTC)
        rows = await conn.fetch(UPCOMING_SQL, user_id, now - LONGEST, now, limit, 0)
        if len(rows) == limit:
            await conn.fetchval(UPCOMING_COUNT_SQL, user_id, now - LONGEST, now)

    return op


def create_op(users: list[uuid.UUID], providers: list[uuid.UUID], base: datetime, slot: timedelta) -> Operation:
    """The INSERT of a new booking (autocommit), in slots no other run uses."""

    async def op(conn: asyncpg.Connection, i: int) -> None:
        start = base + (i // len(providers)) * slot
        now = datetime.now(UTC)
        await conn.execute(
            INSERT_SQL,
            uuid.uuid4(),
            users[i % len(users)],
            providers[i % len(providers)],
            start,
            start + slot,
            "confirmed",
            None,
            None,
            1,
            now,
            now,
        )

    return op


async def run_all(
    database_url: str,
    database: str,
    *,
    concurrency: int,
    warmup_s: float,
    seconds: float,
    operations: Sequence[tuple[str, Operation]],
    offsets: Callable[[], tuple[int, int]],
    say: Callable[[str], None],
) -> list[LoadResult]:
    """Each operation measured in turn on one pool of ``concurrency`` connections; ``offsets()`` gives each its
    own (warm-up, measured) ranges of ``i``."""
    pool = await asyncpg.create_pool(database_url, min_size=concurrency, max_size=concurrency)
    assert pool is not None
    try:
        results: list[LoadResult] = []
        for name, op in operations:
            result = await measure(
                pool,
                op,
                name=name,
                database=database,
                concurrency=concurrency,
                warmup_s=warmup_s,
                seconds=seconds,
                offsets=offsets(),
            )
            say(summary(result))
            results.append(result)
        return results
    finally:
        await pool.close()
