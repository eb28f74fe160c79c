"""Queries on bookings. Reads take a ``VisibleBookings`` from the policy, never a bare id filter.

Plain reads (``find``, ``list_visible``) run on a connection with SQLAlchemy Core and return rows; a change loads
the ORM object (``get``) in its write session.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Row, Table, and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from bookings.availability.models import ProviderSchedule
from bookings.bookings.models import Booking, BookingStatus
from bookings.bookings.policy import BusyTime, VisibleBookings
from bookings.bookings.schemas import BookingWindow
from bookings.bookings.store import ListQuery, SlotGuard, Verdict
from bookings.kit.pagination import keyset

BOOKINGS = cast(Table, Booking.__table__)


async def get(session: AsyncSession, visible: VisibleBookings, booking_id: uuid.UUID) -> Booking | None:
    """The booking to change, locked until the session's transaction ends."""
    query = select(Booking).where(visible.clause, Booking.id == booking_id).with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def verdict(
    session: AsyncSession, provider_id: uuid.UUID, guard: SlotGuard, *, besides: uuid.UUID | None = None
) -> Verdict:
    """``guard`` checked in the write transaction, after the provider's lock (statements of a read-committed
    transaction each see what committed before them). ``besides``: a booking being moved, not counted."""
    version = await session.scalar(select(ProviderSchedule.version).where(ProviderSchedule.provider_id == provider_id))
    if version != guard.version:
        return Verdict.SCHEDULE_CHANGED
    if guard.limit is not None:
        assert guard.day_start is not None
        assert guard.day_end is not None
        count = select(func.count()).where(
            Booking.provider_id == provider_id,
            Booking.status == BookingStatus.CONFIRMED,
            Booking.start_time >= guard.day_start,
            Booking.start_time < guard.day_end,
        )
        if besides is not None:
            count = count.where(Booking.id != besides)
        if (await session.scalar(count) or 0) >= guard.limit:
            return Verdict.DAILY_LIMIT
    return Verdict.OK


async def blocked_ranges(
    session: AsyncSession, busy: BusyTime, lo: datetime, hi: datetime
) -> list[tuple[datetime, datetime, datetime]]:
    """``(start_time, blocked_start, blocked_end)`` of the provider's confirmed bookings whose blocked range meets
    ``[lo, hi)``: busy time for a slot search, without who booked it (``policy.busy_time`` is the proof that
    allows it). On PostgreSQL through the exclusion constraint's GiST index."""
    query = select(Booking.start_time, Booking.blocked_start, Booking.blocked_end).where(
        Booking.provider_id == busy.provider_id, Booking.status == BookingStatus.CONFIRMED
    )
    if session.get_bind().dialect.name == "postgresql":
        blocked = func.tstzrange(Booking.blocked_start, Booking.blocked_end, "[)")
        query = query.where(blocked.op("&&")(func.tstzrange(lo, hi, "[)")))
    else:
        query = query.where(Booking.blocked_start < hi, Booking.blocked_end > lo)
    return [(row[0], row[1], row[2]) for row in await session.execute(query)]


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
