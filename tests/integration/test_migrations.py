"""Migrations upgrade and downgrade cleanly on both databases, and match the models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import make_url

from bookings.auth import models as _auth_models  # noqa: F401 - registers the table
from bookings.bookings import models as _booking_models  # noqa: F401
from bookings.config import Settings
from bookings.events import models as _event_models  # noqa: F401
from bookings.jobs import models as _job_models  # noqa: F401
from bookings.kit.orm import Base
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
}
AFTER_0003 = {
    "jobs",
    "webhook_endpoints",
    "idempotency_keys",
    "booking_history",
    "provider_schedules",
    "availability_overrides",
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
