"""Alembic environment: runs migrations over the service's own async engine, on either backend."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

# Import every model so that autogenerate sees the whole schema.
from bookings.auth import models as _auth_models  # noqa: F401
from bookings.availability import models as _availability_models  # noqa: F401
from bookings.bookings import models as _booking_models  # noqa: F401
from bookings.calendar import models as _calendar_models  # noqa: F401
from bookings.db import async_url
from bookings.events import models as _event_models  # noqa: F401
from bookings.idempotency import models as _idempotency_models  # noqa: F401
from bookings.jobs import models as _job_models  # noqa: F401
from bookings.kit.orm import Base
from bookings.users import models as _user_models  # noqa: F401
from bookings.webhooks import models as _webhook_models  # noqa: F401

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(async_url(config.get_main_option("sqlalchemy.url") or ""), poolclass=NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    asyncio.run(_run_async())
