"""After the load: let the service settle, then read what the database holds, all in one consistent read.

Settling is three waits, each with a deadline (a wait that runs out is reported, and its check fails):
every reminder due by the cutoff has run; then, with the worker stopped so that nothing new is written,
the relay has numbered and published every event; then each listener has received up to the last id.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from chaos.deployment import Deployment
from chaos.listeners import AdminListener

Row = dict[str, Any]

LIVE_DUE_REMINDERS = (
    "SELECT count(*) FROM jobs WHERE kind = 'reminder' AND state IN ('pending', 'running') AND due_at <= %s"
)
RELAY_BEHIND = """
SELECT (SELECT count(*) FROM events WHERE id IS NULL)
     + (SELECT count(*) FROM events WHERE id > coalesce((SELECT max(published_through) FROM relay_state), 0))
"""
OVERLAPS = """
SELECT x.id AS first, y.id AS second FROM bookings x JOIN bookings y
  ON x.provider_id = y.provider_id AND x.id < y.id
 AND tstzrange(x.start_time, x.end_time, '[)') && tstzrange(y.start_time, y.end_time, '[)')
WHERE x.status = 'confirmed' AND y.status = 'confirmed'
"""


@dataclass
class Snapshot:
    bookings: list[Row]
    events: list[Row]  # in id order, unnumbered ones last
    reminder_jobs: list[Row]
    published_through: int
    overlaps: list[Row]  # pairs of confirmed bookings of one provider that overlap now

    @property
    def last_id(self) -> int:
        return max((e["id"] for e in self.events if e["id"] is not None), default=0)


async def _scalar(db_url: str, sql: str, *args: Any) -> int:
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        row = await (await conn.execute(sql, args)).fetchone()
        assert row is not None
        return int(row[0])


async def _until(condition: Callable[[], Awaitable[bool]], within: float) -> bool:
    deadline = time.monotonic() + within
    while not await condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.25)
    return True


async def read(db_url: str) -> Snapshot:
    async with await psycopg.AsyncConnection.connect(db_url, row_factory=dict_row) as conn:
        await conn.set_isolation_level(psycopg.IsolationLevel.REPEATABLE_READ)
        async with conn.transaction():
            bookings = await (await conn.execute("SELECT * FROM bookings")).fetchall()
            events = await (await conn.execute("SELECT * FROM events ORDER BY id NULLS LAST, seq")).fetchall()
            jobs = await (await conn.execute("SELECT * FROM jobs WHERE kind = 'reminder' ORDER BY id")).fetchall()
            relay = await (await conn.execute("SELECT max(published_through) AS mark FROM relay_state")).fetchone()
            overlaps = await (await conn.execute(OVERLAPS)).fetchall()
    return Snapshot(bookings, events, jobs, int((relay or {}).get("mark") or 0), overlaps)


async def settle(
    deployment: Deployment, listeners: list[AdminListener], cutoff: datetime, within: float
) -> tuple[Snapshot, list[str]]:
    """The snapshot, and what did not settle in time (empty when everything did)."""
    db_url, late = deployment.db_url, []
    if not await _until(lambda: _none(db_url, LIVE_DUE_REMINDERS, cutoff), within):
        late.append("reminders due by the cutoff still pending")
    await asyncio.to_thread(deployment.stop_worker)
    if not await _until(lambda: _none(db_url, RELAY_BEHIND), within):
        late.append("relay had not numbered and published every event")
    snapshot = await read(db_url)

    async def heard_all() -> bool:
        return all(all(i in listener.events for i in range(1, snapshot.last_id + 1)) for listener in listeners)

    if not await _until(heard_all, within):
        late.append("listeners had not received every event")
    return snapshot, late


async def _none(db_url: str, sql: str, *args: Any) -> bool:
    return await _scalar(db_url, sql, *args) == 0
