"""How workers learn that a job was added, without polling the table in a tight loop.

``LocalWakeup`` (embedded mode): the writer sets an in-process event after its commit.
``PostgresWakeup`` (distributed mode): writers notify ``bookings_jobs`` after their commit (see ``Notifier``)
and every worker LISTENs. Either way the worker also sleeps no longer than the next job's due time, nor than its poll,
so a lost signal (a restarted Redis or database connection) only delays a job, never loses it.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from bookings.config import Settings
from bookings.kit.signals import CommitSignal, Listener, Notifier

CHANNEL = "bookings_jobs"


class Wakeup(Protocol):
    def stage(self, session: AsyncSession) -> None:
        """Wake the workers once ``session`` commits."""

    def poke(self) -> None:
        """Wake the workers now: jobs have just committed."""

    async def wait(self, seconds: float) -> None:
        """Return when woken, or after ``seconds``."""

    async def close(self) -> None: ...


class LocalWakeup(CommitSignal):
    async def close(self) -> None:
        return None


class PostgresWakeup:
    def __init__(self, database_url: str, *, notify_url: str | None = None) -> None:
        """``database_url`` a session of its own (LISTEN); ``notify_url`` may go through a pooler."""
        self._listener = Listener(database_url, CHANNEL)
        self._notifier = Notifier(notify_url or database_url, CHANNEL)

    def stage(self, session: AsyncSession) -> None:
        self._notifier.stage(session)

    def poke(self) -> None:
        self._notifier.poke()

    async def wait(self, seconds: float) -> None:
        await self._listener.wait(seconds)

    async def close(self) -> None:
        await self._notifier.close()
        await self._listener.close()


def wakeup_from_settings(settings: Settings) -> Wakeup:
    return (
        LocalWakeup()
        if settings.is_sqlite
        else PostgresWakeup(settings.session_database_url, notify_url=settings.database_url)
    )
