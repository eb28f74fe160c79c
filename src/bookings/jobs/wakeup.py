"""How workers learn that a job was added, without polling the table in a tight loop.

``LocalWakeup`` (embedded mode): the writer sets an in-process event after its commit.
``PostgresWakeup`` (distributed mode): a trigger on ``jobs`` notifies ``bookings_jobs`` at commit and every
worker LISTENs. Either way the worker also sleeps no longer than the next job's due time, nor than its poll,
so a lost signal (a restarted Redis or database connection) only delays a job, never loses it.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol

import psycopg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from bookings.config import Settings
from bookings.db import after_commit

CHANNEL = "bookings_jobs"


class Wakeup(Protocol):
    def stage(self, session: AsyncSession) -> None:
        """Wake the workers once ``session`` commits."""

    async def wait(self, seconds: float) -> None:
        """Return when woken, or after ``seconds``."""

    async def close(self) -> None: ...


class LocalWakeup:
    def __init__(self) -> None:
        self._event = asyncio.Event()

    def stage(self, session: AsyncSession) -> None:
        after_commit(session, self._event.set)

    async def wait(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._event.wait()
        self._event.clear()

    async def close(self) -> None:
        return None


class PostgresWakeup:
    def __init__(self, database_url: str) -> None:
        self._dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None

    def stage(self, session: AsyncSession) -> None:
        return None  # the trigger on ``jobs`` notifies at commit

    async def wait(self, seconds: float) -> None:
        try:
            if self._conn is None or self._conn.closed:
                self._conn = await psycopg.AsyncConnection.connect(self._dsn, autocommit=True, connect_timeout=5)
                await self._conn.execute(f"LISTEN {CHANNEL}")
            async for _ in self._conn.notifies(timeout=seconds, stop_after=1):
                break
        except psycopg.Error:
            await self.close()
            await asyncio.sleep(min(seconds, 1.0))

    async def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
        self._conn = None


def wakeup_from_settings(settings: Settings) -> Wakeup:
    return LocalWakeup() if settings.is_sqlite else PostgresWakeup(settings.database_url)
