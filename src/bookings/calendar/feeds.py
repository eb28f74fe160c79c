"""Calendar feeds: a secret URL per account that a calendar app polls for the account's bookings.

The secret is the whole credential (calendar apps send no headers of their own), so it is long, random, stored only
as its SHA-256, and replaced by asking for a new one. A feed shows what the policy lets its owner see (a user their
bookings, a provider the ones assigned to them), from ``WINDOW_DAYS`` back on; its ``ETag`` comes from one
aggregate query, so a poll of an unchanged feed reads no booking.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from sqlalchemy import ColumnElement, and_, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bookings.auth.principal import Principal
from bookings.bookings import policy
from bookings.bookings.models import Booking, BookingStatus
from bookings.calendar import ical
from bookings.calendar.models import CalendarFeed
from bookings.kit.time import Clock
from bookings.users.models import Role, User

WINDOW_DAYS = 30
MAX_EVENTS = 2000  # the earliest first; a feed is a view for calendars, the API is the complete record
REFRESH_MINUTES = 15


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Feed:
    owner: Principal
    name: str


class CalendarFeeds:
    def __init__(self, clock: Clock, *, longest: timedelta) -> None:
        self._clock = clock
        self._longest = longest

    async def issue(self, session: AsyncSession, user_id: uuid.UUID) -> str:
        """A new secret for the account's feed; the one before it stops working."""
        secret = secrets.token_urlsafe(32)
        feed = await session.get(CalendarFeed, user_id, with_for_update=True)
        if feed is None:
            session.add(CalendarFeed(user_id=user_id, secret_hash=digest(secret), created_at=self._clock()))
        else:
            feed.secret_hash, feed.created_at = digest(secret), self._clock()
        await session.flush()
        return secret

    async def revoke(self, session: AsyncSession, user_id: uuid.UUID) -> None:
        await session.execute(delete(CalendarFeed).where(CalendarFeed.user_id == user_id))

    async def find(self, session: AsyncSession, secret: str) -> Feed | None:
        row = (
            await session.execute(
                select(User.id, User.role, User.name)
                .join(CalendarFeed, CalendarFeed.user_id == User.id)
                .where(CalendarFeed.secret_hash == digest(secret))
            )
        ).first()
        return None if row is None else Feed(Principal(row.id, Role(row.role)), row.name)

    def _window(self, feed: Feed) -> ColumnElement[bool]:
        """The owner's bookings that end after the window's start: midnight UTC ``WINDOW_DAYS`` ago, so the window
        moves once a day and an unchanged feed keeps its tag all day."""
        today = datetime.combine(self._clock().date(), time(), tzinfo=self._clock().tzinfo)
        start = today - timedelta(days=WINDOW_DAYS)
        # ``start_time`` bounds the index scan (no booking lasts longer than ``longest``).
        return and_(
            policy.visible_to(feed.owner).clause,
            Booking.start_time > start - self._longest,
            Booking.end_time > start,
        )

    async def tag(self, session: AsyncSession, feed: Feed) -> str:
        """The feed's ``ETag``: changes when a booking in it changes, is added, or leaves the window."""
        where = self._window(feed)
        count, changed = (await session.execute(select(func.count(), func.max(Booking.updated_at)).where(where))).one()
        window = self._clock().date().isoformat()
        seed = f"{feed.owner.user_id}|{window}|{count}|{changed.isoformat() if changed else '-'}"
        return f'"{hashlib.sha256(seed.encode()).hexdigest()[:32]}"'

    async def render(self, session: AsyncSession, feed: Feed) -> bytes:
        customer, provider = aliased(User), aliased(User)
        rows = await session.execute(
            select(Booking, customer.name, customer.email, provider.name, provider.email)
            .join(customer, customer.id == Booking.user_id)
            .join(provider, provider.id == Booking.provider_id)
            .where(self._window(feed))
            .order_by(Booking.start_time, Booking.id)
            .limit(MAX_EVENTS)
        )
        stamp = self._clock()
        vevents = []
        for booking, user_name, user_email, provider_name, provider_email in rows:
            shown = ical.CalendarBooking(
                id=booking.id,
                version=booking.version,
                start_time=booking.start_time,
                end_time=booking.end_time,
                cancelled=booking.status is BookingStatus.CANCELLED,
                notes=booking.notes,
                updated_at=booking.updated_at,
                user=ical.Party(user_name, user_email),
                provider=ical.Party(provider_name, provider_email),
            )
            vevents.append(ical.event(shown, summary=_summary(feed.owner, shown), stamp=stamp))
        return ical.feed(f"Bookings: {feed.name}", vevents, refresh_minutes=REFRESH_MINUTES)


def _summary(owner: Principal, booking: ical.CalendarBooking) -> str:
    """Named after the other person (an admin's feed names both)."""
    if owner.role is Role.USER:
        return f"Booking with {booking.provider.name}"
    if owner.role is Role.PROVIDER:
        return f"Booking with {booking.user.name}"
    return f"Booking: {booking.user.name} with {booking.provider.name}"
