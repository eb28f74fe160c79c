"""Who may see or change a booking. The only code in the bookings domain that decides it.

Seeing follows ``bookings.access`` (admins everything, providers what is assigned to them, users their own), as a
``VisibleBookings`` filter that only this module can build; the repository's read functions accept nothing else,
so a query that forgets the rule does not type-check (and fails at run time if forced). A slot search sees a
provider's busy time without whose it is, through a ``BusyTime``. Changing is decided by the ``can_*`` functions,
for bookings the caller can already see.
"""

from __future__ import annotations

import uuid

from sqlalchemy import ColumnElement

from bookings.access import Audience, audience
from bookings.auth.principal import Principal
from bookings.bookings.models import Booking
from bookings.users.models import Role

_KEY = object()


class VisibleBookings:
    """The bookings one principal may see (``access.Audience`` over the bookings table): a WHERE clause for
    queries (``clause``, or ``owner_column``/``owner_id`` for hand-written SQL) and ``admits`` for a row already in
    hand (a cached one)."""

    __slots__ = ("_audience",)

    def __init__(self, audience: Audience, *, _key: object) -> None:
        if _key is not _KEY:
            raise TypeError("only bookings.policy builds a VisibleBookings")
        self._audience = audience

    @property
    def owner_column(self) -> str | None:
        return self._audience.owner  # None: every booking (an admin)

    @property
    def owner_id(self) -> uuid.UUID:
        return self._audience.owner_id

    @property
    def clause(self) -> ColumnElement[bool]:
        """Built when asked for: the request path on PostgreSQL uses ``owner_column`` and never needs it."""
        return self._audience.where(Booking.user_id, Booking.provider_id)

    def admits(self, user_id: uuid.UUID, provider_id: uuid.UUID) -> bool:
        return self._audience.admits(user_id, provider_id)


class BusyTime:
    """A provider's busy time, for a slot search by anyone signed in: when their confirmed bookings (and buffers)
    are, never whose they are. ``bookings.repository.blocked_ranges`` reads nothing else of other people's."""

    __slots__ = ("provider_id",)

    def __init__(self, provider_id: uuid.UUID, *, _key: object) -> None:
        if _key is not _KEY:
            raise TypeError("only bookings.policy builds a BusyTime")
        self.provider_id = provider_id


def visible_to(principal: Principal) -> VisibleBookings:
    return VisibleBookings(audience(principal), _key=_KEY)


def busy_time(provider_id: uuid.UUID) -> BusyTime:
    return BusyTime(provider_id, _key=_KEY)


def can_create(principal: Principal) -> bool:
    """Only users book: a provider does not book others, and an admin has no one to book for."""
    return principal.role is Role.USER


def can_edit(principal: Principal, booking: Booking) -> bool:
    """Rescheduling and notes: the booking's user, or an admin."""
    return principal.role is Role.ADMIN or booking.user_id == principal.user_id


def can_cancel(principal: Principal, booking: Booking) -> bool:
    """Cancelling: the booking's user, its provider, or an admin."""
    return principal.role is Role.ADMIN or principal.user_id in (booking.user_id, booking.provider_id)
