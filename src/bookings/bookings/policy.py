"""Who may see or change a booking. The only code that decides it.

Admins see every booking, providers the bookings assigned to them, users their own. Seeing is decided by a
``VisibleBookings`` filter that only this module can build; the repository's read functions accept nothing
else, so a query that forgets the rule does not type-check (and fails at run time if forced).
Changing is decided by the ``can_*`` functions, for bookings the caller can already see.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, true

from bookings.auth.principal import Principal
from bookings.bookings.models import Booking
from bookings.events.models import Event
from bookings.users.models import Role

_KEY = object()


class VisibleBookings:
    """A WHERE clause limiting bookings to those one principal may see."""

    __slots__ = ("clause",)

    def __init__(self, clause: ColumnElement[bool], *, _key: object) -> None:
        if _key is not _KEY:
            raise TypeError("only bookings.policy builds a VisibleBookings")
        self.clause = clause


def visible_to(principal: Principal) -> VisibleBookings:
    clause: ColumnElement[bool]
    match principal.role:
        case Role.ADMIN:
            clause = true()
        case Role.PROVIDER:
            clause = Booking.provider_id == principal.user_id
        case Role.USER:
            clause = Booking.user_id == principal.user_id
    return VisibleBookings(clause, _key=_KEY)


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


def may_receive(principal: Principal, user_id: object, provider_id: object) -> bool:
    """The same rule for a live event on its way to a connection."""
    return principal.role is Role.ADMIN or principal.user_id in (user_id, provider_id)
