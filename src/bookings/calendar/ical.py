"""Bookings as iCalendar objects (RFC 5545), for invites in mail (RFC 5546 iTIP) and for feeds.

Every representation of a booking, in every message and every feed, has the same ``UID`` and a ``SEQUENCE`` equal
to the booking's version, so a calendar that has seen an earlier version updates that event instead of adding one.
Times are written in UTC: they are exact, and every calendar shows them in its own zone.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import icalendar

PRODUCT_ID = "-//Bookings//Bookings//EN"


class Method(enum.StrEnum):
    """iTIP methods: an invitation (new or updated), or its withdrawal."""

    REQUEST = "REQUEST"
    CANCEL = "CANCEL"


@dataclass(frozen=True, slots=True)
class Party:
    name: str
    email: str


@dataclass(frozen=True, slots=True)
class CalendarBooking:
    """What a calendar shows of a booking."""

    id: uuid.UUID
    version: int
    start_time: datetime
    end_time: datetime
    cancelled: bool
    notes: str | None
    updated_at: datetime
    user: Party
    provider: Party


def uid(booking_id: uuid.UUID) -> str:
    return f"booking-{booking_id}@bookings"


def _address(party: Party) -> icalendar.vCalAddress:
    address = icalendar.vCalAddress(f"mailto:{party.email}")
    address.params["CN"] = party.name
    return address


def event(
    booking: CalendarBooking, *, summary: str, stamp: datetime, organizer: Party | None = None
) -> icalendar.Event:
    """The booking's ``VEVENT``. With an ``organizer`` it is an iTIP one: the organiser and both people attending."""
    vevent = icalendar.Event()
    vevent.add("uid", uid(booking.id))
    vevent.add("sequence", booking.version)
    vevent.add("dtstamp", stamp)
    vevent.add("last-modified", booking.updated_at)
    vevent.add("dtstart", booking.start_time)
    vevent.add("dtend", booking.end_time)
    vevent.add("summary", summary)
    if booking.notes:
        vevent.add("description", booking.notes)
    vevent.add("status", "CANCELLED" if booking.cancelled else "CONFIRMED")
    vevent.add("transp", "TRANSPARENT" if booking.cancelled else "OPAQUE")
    if organizer is not None:
        vevent.add("organizer", _address(organizer))
        for party in (booking.user, booking.provider):
            attendee = _address(party)
            attendee.params["ROLE"] = "REQ-PARTICIPANT"
            attendee.params["PARTSTAT"] = "DECLINED" if booking.cancelled else "ACCEPTED"
            vevent.add("attendee", attendee)
    return vevent


def _calendar(*, method: Method | None = None, name: str | None = None) -> icalendar.Calendar:
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODUCT_ID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    if method is not None:
        calendar.add("method", method.value)
    if name is not None:
        calendar.add("name", name)  # RFC 7986
        calendar.add("x-wr-calname", name)  # what Google Calendar and Outlook read
    return calendar


def invite(method: Method, vevent: icalendar.Event) -> bytes:
    """A one-event iTIP object, for a ``text/calendar; method=...`` part of a message."""
    calendar = _calendar(method=method)
    calendar.add_component(vevent)
    text: bytes = calendar.to_ical()
    return text


def feed(name: str, vevents: list[icalendar.Event], *, refresh_minutes: int) -> bytes:
    """A subscribable calendar (no iTIP method), with how often to poll it."""
    calendar = _calendar(name=name)
    calendar.add("refresh-interval", timedelta(minutes=refresh_minutes), parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", f"PT{refresh_minutes}M")
    for vevent in vevents:
        calendar.add_component(vevent)
    text: bytes = calendar.to_ical()
    return text
