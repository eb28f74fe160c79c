"""Queries on bookings. Reads take a ``VisibleBookings`` from the policy, never a bare id filter.

Plain reads (``find``, ``list_visible``) run on a connection with SQLAlchemy Core and return rows; a change loads
the ORM object (``get``) in its write session.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Row, Table, Text, and_, func, select
from sqlalchemy import cast as sql_cast
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from bookings.bookings.models import Booking
from bookings.bookings.policy import VisibleBookings
from bookings.bookings.schemas import BookingWindow
from bookings.bookings.store import PROVIDER_LOCK_SPACE, ListQuery
from bookings.kit.pagination import keyset

BOOKINGS = cast(Table, Booking.__table__)


async def get(session: AsyncSession, visible: VisibleBookings, booking_id: uuid.UUID) -> Booking | None:
    """The booking to change, locked until the session's transaction ends."""
    query = select(Booking).where(visible.clause, Booking.id == booking_id).with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def lock_provider(session: AsyncSession, provider_id: uuid.UUID) -> None:
    """Before giving the provider a new slot, wait for any other such write of theirs (``PROVIDER_LOCK_SPACE``).

    PostgreSQL only: on SQLite every write transaction already holds the database's one write lock.
    """
    if session.get_bind().dialect.name == "postgresql":
        key = func.hashtext(sql_cast(provider_id, Text))
        await session.execute(select(func.pg_advisory_xact_lock(PROVIDER_LOCK_SPACE, key)))


async def find(connection: AsyncConnection, visible: VisibleBookings, booking_id: uuid.UUID) -> Row[Any] | None:
    query = select(BOOKINGS).where(visible.clause, BOOKINGS.c.id == booking_id)
    return (await connection.execute(query)).first()


def _window(window: BookingWindow | None, now: datetime, longest: timedelta) -> list[ColumnElement[bool]]:
    """The time predicates of a list, written so the index on ``start_time`` bounds the scan.

    ``end_time > now`` alone cannot use the (owner, start_time) index, so every upcoming booking is also
    ``start_time > now - longest`` (no booking lasts longer): the scan starts just before now, not at the
    beginning of history, and its rows come out already in order.
    """
    if window is BookingWindow.UPCOMING:
        return [Booking.start_time > now - longest, Booking.end_time > now]
    if window is BookingWindow.PAST:
        return [Booking.start_time < now, Booking.end_time <= now]
    return []


async def list_visible(
    connection: AsyncConnection, visible: VisibleBookings, query: ListQuery
) -> tuple[list[Row[Any]], int | None, datetime | None]:
    """The page (and one row more), the total when paging by number, and the earliest end among the visible
    bookings not yet ended."""
    where = and_(visible.clause, *_window(query.window, query.now, query.longest))
    page = query.paging
    descending = query.window is BookingWindow.PAST
    rows = list(
        await connection.execute(
            keyset(select(BOOKINGS).where(where), page, BOOKINGS.c.start_time, BOOKINGS.c.id, descending=descending)
        )
    )
    changes_at = await connection.scalar(
        select(func.min(Booking.end_time)).where(
            visible.clause, *_window(BookingWindow.UPCOMING, query.now, query.longest)
        )
    )
    if page.page is None:
        return rows, None, changes_at
    if page.offset == 0 and len(rows) <= page.limit:
        return rows, len(rows), changes_at  # the whole result fits on the first page: no need to count
    total = await connection.scalar(select(func.count()).select_from(BOOKINGS).where(where))
    return rows, total or 0, changes_at
