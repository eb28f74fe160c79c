"""How the relay learns that events are waiting, and how only one relay runs at a time.

Two implementations, chosen once by ``coordinator_from_settings``:

- ``LocalCoordinator`` (embedded mode): one process, so it always leads; writers wake it in-process after
  their commit.
- ``PostgresCoordinator`` (distributed mode): a dedicated connection holds a session advisory lock (the leader
  is whoever holds it; if its process dies, PostgreSQL frees the lock and a standby takes over) and LISTENs on
  the channel that writers notify after every commit that wrote events (see ``Notifier``).
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import psycopg
import structlog

from bookings.config import Settings
from bookings.kit.signals import CommitSignal, Listener, Notifier

log = structlog.get_logger("bookings.relay")

CHANNEL = "bookings_events"
RELAY_LOCK_KEY = 0x626F6F6B  # "book": one advisory lock key for the whole service


class Coordinator(Protocol):
    def poke(self) -> None:
        """Wake the relay: events have just committed."""

    async def lead(self) -> None:
        """Return once this process is the one relay allowed to publish."""

    async def still_leading(self) -> bool: ...

    async def wait_for_events(self, seconds: float) -> None:
        """Return when new events may have committed, or after ``seconds``."""

    async def close(self) -> None: ...


class LocalCoordinator:
    def __init__(self) -> None:
        self._signal = CommitSignal()

    def poke(self) -> None:
        self._signal.poke()

    async def lead(self) -> None:
        return None

    async def still_leading(self) -> bool:
        return True

    async def wait_for_events(self, seconds: float) -> None:
        await self._signal.wait(seconds)

    async def close(self) -> None:
        return None


class PostgresCoordinator:
    """The LISTEN connection also holds the advisory lock: if it breaks, the lock is gone with it."""

    def __init__(self, database_url: str, *, notify_url: str | None = None, retry_seconds: float = 1.0) -> None:
        """``database_url`` a session of its own (LISTEN, the lock); ``notify_url`` may go through a pooler."""
        self._listener = Listener(database_url, CHANNEL)
        self._notifier = Notifier(notify_url or database_url, CHANNEL)
        self._retry = retry_seconds

    def poke(self) -> None:
        self._notifier.poke()

    async def lead(self) -> None:
        while True:
            try:
                conn = await self._listener.connection()
                row = await (await conn.execute("SELECT pg_try_advisory_lock(%s)", (RELAY_LOCK_KEY,))).fetchone()
                if row and row[0]:
                    log.info("relay_leading")
                    return
            except psycopg.Error as exc:
                log.warning("relay_lock_unavailable", error=type(exc).__name__)
                await self._listener.close()
            await asyncio.sleep(self._retry)

    async def still_leading(self) -> bool:
        try:
            conn = await self._listener.connection()
            sql = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = %s AND pid = pg_backend_pid()"
            row = await (await conn.execute(sql, (RELAY_LOCK_KEY,))).fetchone()
            return bool(row and row[0])
        except psycopg.Error:
            await self._listener.close()
            return False

    async def wait_for_events(self, seconds: float) -> None:
        await self._listener.wait(seconds)

    async def close(self) -> None:
        await self._notifier.close()
        await self._listener.close()


def coordinator_from_settings(settings: Settings) -> Coordinator:
    if settings.is_sqlite:
        return LocalCoordinator()
    return PostgresCoordinator(settings.session_database_url, notify_url=settings.database_url)
