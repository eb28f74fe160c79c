"""One message about one booking to one person: plain text, HTML and a calendar invite, in their time zone.

Names, notes and reasons are user input: the HTML template escapes them (Jinja2 autoescaping), and header values
are folded onto one line so no input can add a header.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from bookings.calendar import ical

_TEMPLATES = Environment(
    loader=PackageLoader("bookings.mail"),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
# Header lines may be 998 characters long (RFC 5322 §2.1.1): a long unsubscribe URL stays one plain ``<URL>``
# instead of being folded into encoded words that mail clients would not read as a URL.
MAIL_POLICY = policy.default.clone(max_line_length=998)
_LINE_BREAKS = re.compile(r"[\r\n\t\x0b\x0c\x85\u2028\u2029]+")


class Notice(enum.StrEnum):
    CONFIRMED = "confirmed"
    RESCHEDULED = "rescheduled"
    CANCELLED = "cancelled"
    REMINDER = "reminder"


_SUBJECTS = {
    Notice.CONFIRMED: "Booked: {other}, {when}",
    Notice.RESCHEDULED: "Moved: {other}, now {when}",
    Notice.CANCELLED: "Cancelled: {other}, {when}",
    Notice.REMINDER: "Reminder: {other}, {when}",
}


@dataclass(frozen=True, slots=True)
class Recipient:
    name: str
    email: str
    zone: str  # IANA


@dataclass(frozen=True, slots=True)
class Letter:
    """Everything one message says."""

    notice: Notice
    booking: ical.CalendarBooking
    recipient: Recipient
    other_name: str
    previous: tuple[datetime, datetime] | None  # a rescheduled booking's times before
    reason: str | None
    unsubscribe_url: str
    message_id: str
    sent_at: datetime


def one_line(value: str) -> str:
    return _LINE_BREAKS.sub(" ", value).strip()


def when(start: datetime, end: datetime, zone: str) -> str:
    """``Tuesday 4 May 2027, 09:00-09:30 CEST (Europe/Berlin)``: each end in the zone's own offset that day."""
    tz = ZoneInfo(zone)
    first, last = start.astimezone(tz), end.astimezone(tz)
    day = f"{first:%A} {first.day} {first:%B %Y}"
    if last.date() == first.date():
        span = f"{first:%H:%M}\u2013{last:%H:%M} {last:%Z}"
    else:
        span = f"{first:%H:%M} {first:%Z} \u2013 {last:%A} {last.day} {last:%B}, {last:%H:%M} {last:%Z}"
    return f"{day}, {span} ({zone})"


def sender_domain(sender: str) -> str:
    address = parseaddr(sender)[1]
    return address.rpartition("@")[2] or "localhost"


def compose(letter: Letter, *, sender: str) -> EmailMessage:
    booking, recipient = letter.booking, letter.recipient
    shown = when(booking.start_time, booking.end_time, recipient.zone)
    before = when(*letter.previous, recipient.zone) if letter.previous else None
    other = one_line(letter.other_name)
    subject = _SUBJECTS[letter.notice].format(other=other, when=shown)
    context = {
        "notice": letter.notice.value,
        "subject": subject,
        "recipient_name": letter.recipient.name,
        "other_name": letter.other_name,
        "when": shown,
        "before": before,
        "reason": letter.reason,
        "notes": booking.notes,
        "unsubscribe_url": letter.unsubscribe_url,
    }
    message = EmailMessage(policy=MAIL_POLICY)
    message["From"] = sender
    message["To"] = formataddr((one_line(recipient.name), recipient.email))
    message["Subject"] = subject
    message["Date"] = format_datetime(letter.sent_at)
    message["Message-ID"] = letter.message_id
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies
    message["List-Unsubscribe"] = f"<{letter.unsubscribe_url}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"  # RFC 8058
    message.set_content(_TEMPLATES.get_template("message.txt").render(context))
    message.add_alternative(_TEMPLATES.get_template("message.html").render(context), subtype="html")
    name, address = parseaddr(sender)
    organizer = ical.Party(name or "Bookings", address)
    method = ical.Method.CANCEL if letter.notice is Notice.CANCELLED else ical.Method.REQUEST
    vevent = ical.event(booking, summary=f"Booking with {other}", stamp=letter.sent_at, organizer=organizer)
    invite = ical.invite(method, vevent).decode()
    message.add_alternative(invite, subtype="calendar", params={"method": method.value})
    return message
