"""Claiming a key and storing its outcome inside a write session's transaction (the ORM path)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bookings.idempotency.keys import LOCK_SPACE, IdempotencyKey, IdempotencyKeyInUse, Outcome, replay
from bookings.idempotency.models import IdempotencyRecord


async def claim(session: AsyncSession, key: IdempotencyKey) -> Outcome | None:
    """The outcome to replay for ``key``, or ``None`` when this request is the first: go on, then ``remember``.

    PostgreSQL: the key's transaction advisory lock first, so that a duplicate running at the same time is a
    ``409`` at once; once it is ours, any earlier request with the key has committed or rolled back, and (read
    committed) the next statement sees its record. SQLite: the write transaction already serialises them.
    """
    if session.get_bind().dialect.name == "postgresql":
        locked = await session.scalar(select(func.pg_try_advisory_xact_lock(LOCK_SPACE, func.hashtext(key.lock_name))))
        if not locked:
            raise IdempotencyKeyInUse()
    record = await session.get(IdempotencyRecord, (key.caller_id, key.key))
    if record is None:
        return None
    return replay(key, record.fingerprint, record.status, record.body, record.headers)


def remember(session: AsyncSession, key: IdempotencyKey, outcome: Outcome, now: datetime) -> None:
    """Store ``outcome`` in the change's own transaction: they commit together or not at all."""
    session.add(
        IdempotencyRecord(
            caller_id=key.caller_id,
            key=key.key,
            fingerprint=key.fingerprint,
            status=outcome.status,
            body=outcome.body.decode(),
            headers=outcome.headers,
            created_at=now,
        )
    )


async def prune(session: AsyncSession, before: datetime) -> None:
    await session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < before))
