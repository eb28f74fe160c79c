"""Migrations upgrade and downgrade cleanly on both databases, and match the models."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import make_url

from bookings.auth import models as _auth_models  # noqa: F401 - registers the table
from bookings.availability import models as _availability_models  # noqa: F401
from bookings.bookings import models as _booking_models  # noqa: F401
from bookings.config import Settings
from bookings.events import models as _event_models  # noqa: F401
from bookings.idempotency import models as _idempotency_models  # noqa: F401
from bookings.jobs import models as _job_models  # noqa: F401
from bookings.kit.orm import Base, UTCDateTime
from bookings.migrate import downgrade, upgrade
from bookings.webhooks import models as _webhook_models  # noqa: F401
from tests.support.databases import ScratchDatabase, create_postgres, create_sqlite

TABLES = {
    "users",
    "refresh_tokens",
    "bookings",
    "events",
    "relay_state",
    "jobs",
    "webhook_endpoints",
    "idempotency_keys",
    "booking_history",
    "provider_schedules",
    "availability_overrides",
    "calendar_feeds",
}
AFTER_0003 = {
    "jobs",
    "webhook_endpoints",
    "idempotency_keys",
    "booking_history",
    "provider_schedules",
    "availability_overrides",
    "calendar_feeds",
}
FIRST = {"users", "refresh_tokens", "bookings"}


def _sync_url(url: str) -> str:
    parsed = make_url(url)
    return str(parsed.set(drivername="postgresql+psycopg")) if parsed.get_backend_name() == "postgresql" else url


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ScratchDatabase]:
    db = create_postgres(migrate=False) if request.param == "postgresql" else create_sqlite(tmp_path, migrate=False)
    yield db
    db.drop()


def _tables(url: str) -> set[str]:
    engine = create_engine(_sync_url(url))
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


class TestMigrations:
    def test_upgrade_downgrade_upgrade(self, empty_database: ScratchDatabase) -> None:
        settings = Settings(database_url=empty_database.url)
        upgrade(settings)
        assert _tables(empty_database.url) == TABLES
        downgrade(settings, "0002")
        assert _tables(empty_database.url) == TABLES - AFTER_0003
        downgrade(settings, "0001")
        assert _tables(empty_database.url) == FIRST
        downgrade(settings, "base")
        assert _tables(empty_database.url) == set()
        upgrade(settings)
        assert _tables(empty_database.url) == TABLES

    def test_migrated_schema_matches_the_models(self, empty_database: ScratchDatabase) -> None:
        upgrade(Settings(database_url=empty_database.url))
        engine = create_engine(_sync_url(empty_database.url))
        try:
            with engine.connect() as connection:
                context = MigrationContext.configure(connection, opts={"compare_type": True})
                assert compare_metadata(context, Base.metadata) == []
        finally:
            engine.dispose()

    def test_blocked_ranges_are_backfilled_and_the_overlap_rule_moves_with_them(
        self, empty_database: ScratchDatabase
    ) -> None:
        """Bookings made before availability keep exactly their protection, up and down again."""
        settings = Settings(database_url=empty_database.url)
        upgrade(settings, "0006")
        users = sa.table(
            "users",
            *(sa.column(name) for name in ("email", "name", "role", "password_hash")),
            sa.column("id", sa.Uuid),
            sa.column("created_at", UTCDateTime),
        )
        columns = ("status", "notes", "version")
        bookings = sa.table(
            "bookings",
            *(sa.column(name) for name in columns),
            *(sa.column(name, sa.Uuid) for name in ("id", "user_id", "provider_id")),
            *(sa.column(name, UTCDateTime) for name in ("start_time", "end_time", "created_at", "updated_at")),
        )
        now = datetime(2027, 1, 4, 9, tzinfo=UTC)
        user, provider, booking = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        engine = create_engine(_sync_url(empty_database.url))

        def book(booking_id: uuid.UUID, start: datetime, *, blocked: bool = False) -> None:
            row = {"id": booking_id, "user_id": user, "provider_id": provider, "start_time": start}
            row |= {"end_time": start + timedelta(hours=1), "status": "confirmed", "notes": None, "version": 1}
            table = bookings
            if blocked:  # as the service writes a booking once blocked ranges exist
                table = sa.table(
                    "bookings",
                    *(sa.column(c.name, c.type) for c in bookings.columns),
                    *(sa.column(c, UTCDateTime) for c in ("blocked_start", "blocked_end")),
                )
                row |= {"blocked_start": start, "blocked_end": start + timedelta(hours=1)}
            with engine.begin() as connection:
                connection.execute(table.insert().values(**row, created_at=now, updated_at=now))

        try:
            with engine.begin() as connection:
                for user_id, role in ((user, "user"), (provider, "provider")):
                    connection.execute(
                        users.insert().values(
                            id=user_id,
                            email=f"{role}@example.com",
                            name=role,
                            role=role,
                            password_hash="x",
                            created_at=now,
                        )
                    )
            book(booking, now)

            upgrade(settings)
            with engine.connect() as connection:
                blocked = connection.execute(
                    sa.select(
                        sa.column("blocked_start", UTCDateTime), sa.column("blocked_end", UTCDateTime)
                    ).select_from(sa.table("bookings"))
                ).one()
            assert tuple(blocked) == (now, now + timedelta(hours=1))
            with pytest.raises(sa.exc.DBAPIError, match=r"booking_overlap|bookings_no_overlap"):
                book(uuid.uuid4(), now + timedelta(minutes=30), blocked=True)
            book(uuid.uuid4(), now + timedelta(hours=1), blocked=True)  # back to back is fine

            downgrade(settings, "0006")
            with pytest.raises(sa.exc.DBAPIError, match=r"booking_overlap|bookings_no_overlap"):
                book(uuid.uuid4(), now + timedelta(minutes=30))
            book(uuid.uuid4(), now - timedelta(hours=1))
        finally:
            engine.dispose()

    def test_accounts_made_before_mail_get_it_on_and_the_default_zone(self, empty_database: ScratchDatabase) -> None:
        settings = Settings(database_url=empty_database.url)
        upgrade(settings, "0007")
        users = sa.table(
            "users",
            *(sa.column(name) for name in ("email", "name", "role", "password_hash")),
            sa.column("id", sa.Uuid),
            sa.column("created_at", UTCDateTime),
        )
        engine = create_engine(_sync_url(empty_database.url))
        try:
            with engine.begin() as connection:
                connection.execute(
                    users.insert().values(
                        id=uuid.uuid4(),
                        email="old@example.com",
                        name="Old",
                        role="user",
                        password_hash="x",
                        created_at=datetime(2027, 1, 4, tzinfo=UTC),
                    )
                )
            upgrade(settings)
            with engine.connect() as connection:
                row = connection.execute(sa.text("SELECT email_notifications, time_zone FROM users")).one()
            assert (bool(row[0]), row[1]) == (True, None)
            downgrade(settings, "0007")
            assert "calendar_feeds" not in _tables(empty_database.url)
        finally:
            engine.dispose()
