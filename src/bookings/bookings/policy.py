"""Who may see or change a booking. The only code that decides it.

Admins see every booking, providers the bookings assigned to them, users their own. Seeing is decided by a
``VisibleBookings`` filter that only this module can build; the repository's read functions accept nothing
else, so a query that forgets the rule does not type-check (and fails at run time if forced).
Changing is decided by the ``can_*`` functions, for bookings the caller can already see.
"""

from __future__ import annotations

import uuid

from sqlalchemy import ColumnElement, true

from bookings.auth.principal import Principal
from bookings.bookings.models import Booking
from bookings.events.models import Event
from bookings.users.models import Role

_KEY = object()


class VisibleBookings:
    """The bookings one principal may see, in two forms of one rule: a WHERE clause for queries (``clause``, or
    ``owner_column``/``owner_id`` for hand-written SQL) and ``admits`` for a row already in hand (a cached one)."""

    __slots__ = ("owner_column", "owner_id")

    def __init__(self, owner_column: str | None, owner_id: uuid.UUID, *, _key: object) -> None:
        if _key is not _KEY:
            raise TypeError("only bookings.policy builds a VisibleBookings")
        self.owner_column = owner_column  # None: every booking (an admin)
        self.owner_id = owner_id

    @property
    def clause(self) -> ColumnElement[bool]:
        """Built when asked for: the request path on PostgreSQL uses ``owner_column`` and never needs it."""
        if self.owner_column is None:
            return true()
        column = Booking.user_id if self.owner_column == "user_id" else Booking.provider_id
        return column == self.owner_id

    def admits(self, user_id: uuid.UUID, provider_id: uuid.UUID) -> bool:
        if self.owner_column is None:
            return True
        return self.owner_id == (user_id if self.owner_column == "user_id" else provider_id)


def visible_to(principal: Principal) -> VisibleBookings:
    owner: str | None
    match principal.role:
        case Role.ADMIN:
            owner = None
        case Role.PROVIDER:
            owner = "provider_id"
        case Role.USER:
            owner = "user_id"
    return VisibleBookings(owner, principal.user_id, _key=_KEY)


def can_create(principal: Principal) -> bool:
    """Only users book: a provider does not book others, and an admin has no one to book for."""
    return principal.role is Role.USER


def can_edit(principal: Principal, booking: Booking) -> bool:
    """Rescheduling and notes: the booking's user, or an admin."""
    return principal.role is Role.ADMIN or booking.user_id == principal.user_id


def can_cancel(principal: Principal, booking: Booking) -> bool:
    """Cancelling: the booking's user, its provider, or an admin."""
    return principal.role is Role.ADMIN or principal.user_id in (booking.user_id, booking.provider_id)


def visible_events(principal: Principal) -> ColumnElement[bool]:
    """Events follow their booking: its user, its provider and every admin see them."""
    match principal.role:
        case Role.ADMIN:
            return true()
        case Role.PROVIDER:
            return Event.provider_id == principal.user_id
        case Role.USER:
            return Event.user_id == principal.user_id


def may_receive(principal: Principal, user_id: uuid.UUID, provider_id: uuid.UUID) -> bool:
    """The same rule for a live event on its way to a connection."""
    return visible_to(principal).admits(user_id, provider_id)
