"""Waking a background loop when a transaction commits: in-process, or through PostgreSQL LISTEN/NOTIFY."""

from __future__ import annotations

import asyncio
import contextlib

import psycopg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from bookings.db import after_commit


class CommitSignal:
    """In-process: a writer stages it on its session; the waiter wakes once that session commits."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def stage(self, session: AsyncSession) -> None:
        after_commit(session, self._event.set)

    async def wait(self, seconds: float) -> None:
        """Return when signalled, or after ``seconds``."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._event.wait()
        self._event.clear()


class Listener:
    """A dedicated autocommit connection that LISTENs on one channel (reconnecting after any failure)."""

    def __init__(self, database_url: str, channel: str) -> None:
        self._dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._channel = channel
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None

    async def connection(self) -> psycopg.AsyncConnection[tuple[object, ...]]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = await psycopg.AsyncConnection.connect(self._dsn, autocommit=True, connect_timeout=5)
            await self._conn.execute(f"LISTEN {self._channel}")
        return self._conn

    async def wait(self, seconds: float) -> None:
        """Return at the next notification, or after ``seconds``; a broken connection is dropped, not raised."""
        try:
            async for _ in (await self.connection()).notifies(timeout=seconds, stop_after=1):
                break
        except psycopg.Error:
            await self.close()
            await asyncio.sleep(min(seconds, 1.0))

    async def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
        self._conn = None
