"""Engines and sessions for both backends; the request's session dependency owns the transaction.

SQLite serialises writers itself, but a plain ``BEGIN`` only takes the write lock at the first write, so two
transactions can both read "the slot is free" and then both try to write. Write sessions on SQLite therefore
begin with ``BEGIN IMMEDIATE``: the overlap check and the insert happen under the one write lock. Reads use a
second engine with ordinary deferred transactions so that they never queue behind writers (WAL mode).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from bookings.config import Settings

SQLITE_BUSY_TIMEOUT_MS = 30_000


def async_url(url: str) -> URL:
    """Turn a URL as users write it (``postgresql://``, ``sqlite:///``) into one with our async driver."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite")
    raise ValueError(f"unsupported database: {backend}")


def _configure_sqlite(engine: AsyncEngine, *, immediate: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_engine(settings: Settings, *, writer: bool = True) -> AsyncEngine:
    url = async_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        engine = create_async_engine(url, pool_size=5 if writer else settings.db_pool_size)
        _configure_sqlite(engine, immediate=writer)
        return engine
    return create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size // 2,
        pool_pre_ping=False,
        pool_recycle=1800,
        # Behind a transaction pooler a named prepared statement may not exist on the next server connection.
        connect_args={"connect_timeout": 5, **({"prepare_threshold": None} if settings.pooled else {})},
    )


class Database:
    """The service's connection to its store: an engine for writes and one for reads."""

    def __init__(self, settings: Settings) -> None:
        self.writer = make_engine(settings, writer=True)
        # PostgreSQL reads run in autocommit on the writer's pool: no BEGIN/COMMIT round trips around a SELECT.
        self.reader = (
            make_engine(settings, writer=False)
            if settings.is_sqlite
            else self.writer.execution_options(isolation_level="AUTOCOMMIT")
        )
        self.is_sqlite = settings.is_sqlite
        self.write_sessions = async_sessionmaker(self.writer, expire_on_commit=False, autoflush=False)
        self.read_sessions = async_sessionmaker(self.reader, expire_on_commit=False, autoflush=False)

    async def dispose(self) -> None:
        await self.writer.dispose()
        if self.is_sqlite:
            await self.reader.dispose()


async def _transaction(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessions() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        # Committed here, before the response is sent (the dependencies use scope="function"): a commit that
        # fails becomes an error response, never a 201 for a row that was rolled back.
        await session.commit()


async def write_session(request: Request) -> AsyncIterator[AsyncSession]:
    db: Database = request.app.state.db
    async for session in _transaction(db.write_sessions):
        yield session


async def read_session(request: Request) -> AsyncIterator[AsyncSession]:
    db: Database = request.app.state.db
    async for session in _transaction(db.read_sessions):
        yield session


WriteSession = Annotated[AsyncSession, Depends(write_session, scope="function")]
ReadSession = Annotated[AsyncSession, Depends(read_session, scope="function")]


def after_commit(session: AsyncSession, callback: Callable[[], object]) -> None:
    """Run ``callback`` once this session's transaction commits (and never if it rolls back)."""
    event.listen(session.sync_session, "after_commit", lambda _s: callback(), once=True)
