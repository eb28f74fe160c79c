"""Hot bookings and booking pages kept in this process's memory, as the JSON they are answered with.

Entries are dropped by the committed event stream, the one path from a commit to everything that reacts to it:
every instance's hub hands each event to ``forget``, and the process that made a change also forgets it the
moment its transaction commits, so a read after a change on the same instance is never older than the change.
A read on another instance is at most the relay's lag behind.

Three more rules keep a stale answer out:

- A read that started before a change must not store what it read after the change was forgotten. Each read
  takes a ``ticket`` before it queries; ``put`` refuses an answer whose key was forgotten since that ticket.
- While the bus is interrupted (Redis down), events may be missed: the cache empties and stores nothing until
  the bus is back (``suspend``/``resume``); reads go to the database.
- Every entry also expires after ``ttl`` seconds, and a page when time alone would change it (a booking on it or
  behind it ending), whichever comes first.

A cached booking is kept with its user and provider so that the policy decides, on every read, whether the
caller may see it (``VisibleBookings.admits``); a page belongs to one principal and is only served to them.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime

# How many forgotten keys are remembered for the ``put`` check. A read whose ticket is older than the oldest
# remembered key (so many changes went by during one read) stores nothing.
FORGOTTEN_REMEMBERED = 10_000
ADMINS: Hashable = "admins"  # the scope of pages every change may alter


@dataclass(frozen=True, slots=True)
class CachedBooking:
    body: bytes
    etag: str
    user_id: uuid.UUID
    provider_id: uuid.UUID
    expires: float


@dataclass(frozen=True, slots=True)
class CachedPage:
    body: bytes
    link: str | None  # the page's ``Link`` header (its next cursor), if it has one
    expires: float  # monotonic
    changes_at: datetime | None  # the clock's time at which a booking on or behind the page ends


class ReadCache:
    def __init__(self, entries: int, *, ttl: float = 60.0) -> None:
        self._capacity = entries
        self._ttl = ttl
        self._bookings: OrderedDict[uuid.UUID, CachedBooking] = OrderedDict()
        self._pages: OrderedDict[Hashable, dict[Hashable, CachedPage]] = OrderedDict()  # scope -> query -> page
        self._forgotten: OrderedDict[Hashable, int] = OrderedDict()  # key -> ticket at which it was forgotten
        self._ticket = 0
        self._floor = 0  # puts with a ticket below this are refused (cleared, or too old to check)
        self._suspended = False

    @property
    def enabled(self) -> bool:
        return self._capacity > 0 and not self._suspended

    def ticket(self) -> int:
        """Take before reading from the database; pass to ``put_*``."""
        return self._ticket

    def booking(self, booking_id: uuid.UUID) -> CachedBooking | None:
        entry = self._bookings.get(booking_id)
        if entry is None:
            return None
        if entry.expires < time.monotonic():
            del self._bookings[booking_id]
            return None
        self._bookings.move_to_end(booking_id)
        return entry

    def put_booking(
        self, ticket: int, booking_id: uuid.UUID, user_id: uuid.UUID, provider_id: uuid.UUID, body: bytes, etag: str
    ) -> None:
        if not self._storable(ticket, booking_id):
            return
        self._bookings[booking_id] = CachedBooking(body, etag, user_id, provider_id, time.monotonic() + self._ttl)
        self._bookings.move_to_end(booking_id)
        if len(self._bookings) > self._capacity:
            self._bookings.popitem(last=False)

    def page(self, scope: Hashable, query: Hashable, now: datetime) -> CachedPage | None:
        pages = self._pages.get(scope)
        entry = pages.get(query) if pages else None
        if entry is None or pages is None:
            return None
        if entry.expires < time.monotonic() or (entry.changes_at is not None and entry.changes_at <= now):
            del pages[query]
            return None
        self._pages.move_to_end(scope)
        return entry

    def put_page(
        self,
        ticket: int,
        scope: Hashable,
        query: Hashable,
        body: bytes,
        changes_at: datetime | None,
        link: str | None = None,
    ) -> None:
        if not self._storable(ticket, scope):
            return
        self._pages.setdefault(scope, {})[query] = CachedPage(body, link, time.monotonic() + self._ttl, changes_at)
        self._pages.move_to_end(scope)
        if len(self._pages) > self._capacity:
            self._pages.popitem(last=False)

    def forget(self, booking_id: uuid.UUID, user_id: uuid.UUID, provider_id: uuid.UUID) -> None:
        """A change to this booking committed: drop it and every page that may show it."""
        self._ticket += 1
        for key in (booking_id, user_id, provider_id, ADMINS):
            self._forgotten[key] = self._ticket
            self._forgotten.move_to_end(key)
        while len(self._forgotten) > FORGOTTEN_REMEMBERED:
            _key, ticket = self._forgotten.popitem(last=False)
            self._floor = max(self._floor, ticket)
        self._bookings.pop(booking_id, None)
        for scope in (user_id, provider_id, ADMINS):
            self._pages.pop(scope, None)

    def clear(self) -> None:
        self._ticket += 1
        self._floor = self._ticket
        self._bookings.clear()
        self._pages.clear()
        self._forgotten.clear()

    def suspend(self) -> None:
        """The event stream is interrupted: changes may go unseen, so nothing is served or stored until resumed."""
        self._suspended = True
        self.clear()

    def resume(self) -> None:
        self.clear()  # anything stored before the interruption may have missed a change
        self._suspended = False

    def _storable(self, ticket: int, key: Hashable) -> bool:
        if not self.enabled or ticket < self._floor:
            return False
        forgotten = self._forgotten.get(key)
        return forgotten is None or forgotten <= ticket
