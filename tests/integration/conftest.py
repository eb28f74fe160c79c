"""Fixtures for tests that drive the service's parts directly on a fresh database of each kind."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bookings.config import Settings
from bookings.db import Database
from tests.support.databases import create_postgres, create_sqlite


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    db = create_postgres() if request.param == "postgresql" else create_sqlite(tmp_path)
    request.addfinalizer(db.drop)  # noqa: PT021 - the database outlives the async fixture below
    return db.url


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(Settings(database_url=database_url))
    yield database
    await database.dispose()
