"""Fresh databases for tests: a new PostgreSQL database or SQLite file per run, migrated with Alembic."""

from __future__ import annotations

import atexit
import functools
import os
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import psycopg

from bookings.config import Settings
from bookings.migrate import upgrade

# Trust auth on the local server; CI brings it up (see .ci/run). A missing server fails the run, never skips it.
PG_ADMIN_URL = os.environ.get("BOOKINGS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BOOKINGS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
# The outbox is left alone: event ids never go back, as in production.
TABLES = ("webhook_endpoints", "jobs", "idempotency_keys", "booking_history", "bookings", "refresh_tokens", "users")


@dataclass
class ScratchDatabase:
    url: str
    name: str

    def truncate(self) -> None:
        if self.url.startswith("sqlite"):
            with sqlite3.connect(self.url.split("///", 1)[1]) as conn:
                for table in TABLES:
                    conn.execute(f"DELETE FROM {table}")
        else:
            with psycopg.connect(self.url, autocommit=True) as conn:
                conn.execute(f"TRUNCATE {', '.join(TABLES)} CASCADE")

    def execute(self, sql: str) -> None:
        """A statement of the test's own, in its own transaction (for example, pruning what the service keeps)."""
        if self.url.startswith("sqlite"):
            with sqlite3.connect(self.url.split("///", 1)[1]) as conn:
                conn.execute(sql)
        else:
            with psycopg.connect(self.url, autocommit=True) as conn:
                conn.execute(sql)  # type: ignore[arg-type]

    def count_bookings(self, provider_id: str | None = None) -> int:
        where = " WHERE provider_id = ?" if provider_id else ""
        if self.url.startswith("sqlite"):
            args = (provider_id.replace("-", ""),) if provider_id else ()
            with sqlite3.connect(self.url.split("///", 1)[1]) as conn:
                return int(conn.execute(f"SELECT count(*) FROM bookings{where}", args).fetchone()[0])
        args_pg = (provider_id,) if provider_id else ()
        with psycopg.connect(self.url) as conn:
            row = conn.execute(f"SELECT count(*) FROM bookings{where.replace('?', '%s')}", args_pg).fetchone()
            assert row is not None
            return int(row[0])

    def drop(self) -> None:
        if self.url.startswith("sqlite"):
            return
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def create_postgres(migrate: bool = True) -> ScratchDatabase:
    """A new database: empty, or (``migrate``) a copy of this process's migrated template, as if freshly migrated."""
    return _new_postgres("bookings_test", template=_migrated_template() if migrate else None)


@functools.cache
def _migrated_template() -> str:
    """A database migrated with Alembic once per process, dropped at its exit. Copying it (``CREATE DATABASE ...
    TEMPLATE``, no connection open to it) takes half the time of running every migration on each new database."""
    template = _new_postgres("bookings_template")
    upgrade(Settings(database_url=template.url))
    atexit.register(template.drop)
    return template.name


def _new_postgres(prefix: str, template: str | None = None) -> ScratchDatabase:
    name = f"{prefix}_{secrets.token_hex(4)}"
    statement = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(statement)
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return ScratchDatabase(url=f"{base}/{name}", name=name)


def create_sqlite(directory: Path, migrate: bool = True) -> ScratchDatabase:
    path = directory / f"bookings-{secrets.token_hex(4)}.db"
    db = ScratchDatabase(url=f"sqlite:///{path}", name=path.name)
    if migrate:
        upgrade(Settings(database_url=db.url))
    return db
