"""Composing a message: user input escaped in HTML and kept out of headers, times in the reader's zone."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import icalendar

from bookings.calendar import ical
from bookings.mail.compose import Letter, Notice, Recipient, compose, when
from bookings.mail.unsubscribe import UnsubscribeTokens

SENDER = "Bookings <bookings@clinic.test>"


def _letter(notice: Notice, *, name: str = "Ada", notes: str | None = None) -> Letter:
    booking = ical.CalendarBooking(
        id=uuid.uuid4(),
        version=3,
        start_time=datetime(2027, 3, 28, 0, 30, tzinfo=UTC),
        end_time=datetime(2027, 3, 28, 1, 30, tzinfo=UTC),
        cancelled=notice is Notice.CANCELLED,
        notes=notes,
        updated_at=datetime(2027, 3, 1, tzinfo=UTC),
        user=ical.Party(name, "ada@example.com"),
        provider=ical.Party("Dr Byron", "byron@example.com"),
    )
    return Letter(
        notice=notice,
        booking=booking,
        recipient=Recipient(name, "ada@example.com", "Europe/Berlin"),
        other_name="Dr Byron",
        previous=None,
        reason=None,
        unsubscribe_url="https://bookings.example.com/v1/mail/unsubscribe?token=" + "t" * 60,
        message_id="<booking-mail.7@clinic.test>",
        sent_at=datetime(2027, 3, 1, tzinfo=UTC),
    )


def test_times_are_shown_in_the_zone_of_their_own_day() -> None:
    # 00:30-01:30 UTC on the morning Berlin springs forward (02:00 CET -> 03:00 CEST at 01:00 UTC).
    shown = when(datetime(2027, 3, 28, 0, 30, tzinfo=UTC), datetime(2027, 3, 28, 1, 30, tzinfo=UTC), "Europe/Berlin")
    assert shown == "Sunday 28 March 2027, 01:30\u201303:30 CEST (Europe/Berlin)"


def test_notes_are_escaped_in_html_and_names_cannot_add_headers() -> None:
    letter = _letter(Notice.CONFIRMED, name="Ada\r\nBcc: eve@example.com", notes="<img src=x onerror=alert(1)>")
    message = compose(letter, sender=SENDER)
    html = next(p for p in message.walk() if p.get_content_type() == "text/html").get_content()
    assert "<img" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert message["Bcc"] is None
    assert "\n" not in str(message["To"])
    raw = message.as_string()
    assert "\nBcc:" not in raw
    assert f"List-Unsubscribe: <{letter.unsubscribe_url}>" in raw  # one plain line, not encoded words


def test_a_cancellation_withdraws_the_invite_of_the_same_event() -> None:
    confirmed, cancelled = _letter(Notice.CONFIRMED), _letter(Notice.CANCELLED)
    for letter, method in ((confirmed, "REQUEST"), (cancelled, "CANCEL")):
        part = next(p for p in compose(letter, sender=SENDER).walk() if p.get_content_type() == "text/calendar")
        assert part.get_param("method") == method
        calendar = icalendar.Calendar.from_ical(part.get_content())
        (event,) = calendar.walk("VEVENT")
        assert str(calendar["METHOD"]) == method
        assert str(event["UID"]) == f"booking-{letter.booking.id}@bookings"
        assert int(event["SEQUENCE"]) == 3
        assert str(event["ORGANIZER"]) == "mailto:bookings@clinic.test"


def test_unsubscribe_tokens_name_one_account_and_survive_a_key_rotation() -> None:
    user = uuid.uuid4()
    old, new = UnsubscribeTokens([b"old-key"]), UnsubscribeTokens([b"new-key", b"old-key"])
    token = old.token(user)
    assert new.user_of(token) == user
    assert UnsubscribeTokens([b"new-key"]).user_of(token) is None
    forged = uuid.uuid4().hex + token[32:]
    assert new.user_of(forged) is None
    assert new.user_of("not-a-token") is None
