"""Waking a background loop when a transaction commits: in-process, or through PostgreSQL LISTEN/NOTIFY."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import psycopg
import structlog
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from bookings.db import after_commit

log = structlog.get_logger("bookings.signals")


class CommitSignal:
    """In-process: a writer stages it on its session; the waiter wakes once that session commits."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def stage(self, session: AsyncSession) -> None:
        after_commit(session, self._event.set)

    def poke(self) -> None:
        """Wake the waiter now (a writer calls it after its commit)."""
        self._event.set()

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
        """Return at the next notification, or after ``seconds``; a broken connection is dropped, not raised.

        The notifications already queued behind the first are taken with it: one wake-up stands for all of them
        (each writer's commit sends one), instead of a round of the waiter's loop per notification.
        """
        try:
            connection = await self.connection()
            async for _ in connection.notifies(timeout=seconds, stop_after=1):
                break
            async for _ in connection.notifies(timeout=0):
                pass
        except psycopg.Error:
            await self.close()
            await asyncio.sleep(min(seconds, 1.0))

    async def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
        self._conn = None


class Notifier:
    """Sends ``NOTIFY channel`` after writers commit: at most one at a time per process, and every poke that
    arrives while one is on its way is folded into the next, so a notification always follows the commit.

    Why not a trigger: a transaction that notifies holds PostgreSQL's database-wide notify lock from its
    pre-commit until its commit is flushed, so with a trigger on the booking tables every booking commit
    queued behind the others (measured: 1,368 creates/s at 32 connections with the triggers, 2,091 without).
    A lost notification (the database unreachable) only delays the listener until its next poll.
    """

    def __init__(self, database_url: str, channel: str) -> None:
        self._dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._channel = channel
        self._sql = f"SELECT pg_notify('{channel}', '')"
        self._connection: asyncpg.Connection | None = None
        self._pending = False
        self._sending: asyncio.Task[None] | None = None

    def stage(self, session: AsyncSession) -> None:
        after_commit(session, self.poke)

    def poke(self) -> None:
        """Notify soon (call it after the commit: the notification must not overtake it)."""
        self._pending = True
        if self._sending is None or self._sending.done():
            self._sending = asyncio.get_running_loop().create_task(self._send())

    async def _send(self) -> None:
        while self._pending:
            self._pending = False
            try:
                if self._connection is None or self._connection.is_closed():
                    self._connection = await asyncpg.connect(self._dsn, timeout=5, statement_cache_size=0)
                await self._connection.execute(self._sql)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("notify_failed", channel=self._channel, error=type(exc).__name__)
                await self.close()
                return

    async def close(self) -> None:
        if self._sending is not None and not self._sending.done() and asyncio.current_task() is not self._sending:
            self._sending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sending
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()
        self._connection = None
