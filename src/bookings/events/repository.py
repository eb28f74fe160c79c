"""Reading the outbox back: where the stream stands, and the events a reconnecting client missed."""

from __future__ import annotations

from collections.abc import AsyncIterator

from sqlalchemy import func, select

from bookings.access import audience
from bookings.auth.principal import Principal
from bookings.db import Database
from bookings.events.models import Event, RelayState
from bookings.events.relay import _envelope
from bookings.events.schemas import Envelope

REPLAY_BATCH = 500


async def latest_id(db: Database) -> int:
    """The id of the newest numbered event: where a client that gives no ``since`` starts.

    The relay's bookmark counts too: once every event has been pruned, ids go on from it, not from 0.
    """
    async with db.read_sessions() as session:
        newest = await session.scalar(select(func.max(Event.id)))
        published = await session.scalar(select(func.max(RelayState.published_through)))
    return max(int(newest or 0), int(published or 0))


async def between(db: Database, after: int, before: int) -> AsyncIterator[Envelope]:
    """Every event with ``after < id < before``, in id order: what a hub's bus lost."""
    last = after
    while last + 1 < before:
        async with db.read_sessions() as session:
            rows = list(
                await session.scalars(
                    select(Event).where(Event.id > last, Event.id < before).order_by(Event.id).limit(REPLAY_BATCH)
                )
            )
        for row in rows:
            yield _envelope(row)
        if len(rows) < REPLAY_BATCH:
            return
        last = rows[-1].id or last


async def missed(db: Database, principal: Principal, since: int) -> AsyncIterator[Envelope]:
    """Events after ``since`` that ``principal`` may see, in id order, a batch per short read."""
    last = since
    while True:
        async with db.read_sessions() as session:
            rows = list(
                await session.scalars(
                    select(Event)
                    .where(Event.id > last, audience(principal).where(Event.user_id, Event.provider_id))
                    .order_by(Event.id)
                    .limit(REPLAY_BATCH)
                )
            )
        for row in rows:
            yield _envelope(row)
        if len(rows) < REPLAY_BATCH:
            return
        last = rows[-1].id or last
