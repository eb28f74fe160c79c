"""Transaction-scoped advisory locks on PostgreSQL (SQLite's write transaction already serialises writers)."""

from __future__ import annotations

import uuid

from sqlalchemy import Text, func, select
from sqlalchemy import cast as sql_cast
from sqlalchemy.ext.asyncio import AsyncSession

# Every write that gives a provider a new slot (create, reschedule) or changes their schedule takes the lock
# (PROVIDER_LOCK_SPACE, hashtext(provider id)) first: such writes of one provider run one after the other.
PROVIDER_LOCK_SPACE = 0x70726F76  # "prov"; the relay's lock is a one-key (bigint) lock, another key space


async def lock_provider(session: AsyncSession, provider_id: uuid.UUID) -> None:
    """Wait for any other write that holds the provider's lock, and hold it until this transaction ends."""
    if session.get_bind().dialect.name == "postgresql":
        key = func.hashtext(sql_cast(provider_id, Text))
        await session.execute(select(func.pg_advisory_xact_lock(PROVIDER_LOCK_SPACE, key)))
