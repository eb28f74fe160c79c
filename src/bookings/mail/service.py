"""Turning booking events into mail jobs (in the relay's numbering transaction), and sending each one.

Each committed event owes its booking's user and its provider one message each, unless they have turned mail off.
A ``booking.updated`` event owes one only when the times moved (its history entry says so); a changed note is not
worth a mail. The job carries the booking as the event saw it, so a message is about that version (its invite's
``SEQUENCE``), however late it goes out; the recipient's address, name, zone and preference are read when it does.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from pydantic import TypeAdapter
from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from bookings.availability.models import ProviderSchedule
from bookings.bookings.models import HistoryEntry
from bookings.calendar import ical
from bookings.db import Database
from bookings.events.schemas import Envelope, EventType
from bookings.jobs.queue import ClaimedJob, JobQueue, NewJob
from bookings.kit.time import Clock
from bookings.mail.compose import Letter, Notice, Recipient, compose, sender_domain
from bookings.mail.smtp import SmtpMailer
from bookings.mail.unsubscribe import UnsubscribeTokens
from bookings.users.models import Role, User

log = structlog.get_logger("bookings.mail")

KIND = "mail"
UNSUBSCRIBE_PATH = "/v1/mail/unsubscribe"
_NOTICES = {
    EventType.CREATED.value: Notice.CONFIRMED,
    EventType.UPDATED.value: Notice.RESCHEDULED,
    EventType.CANCELLED.value: Notice.CANCELLED,
    EventType.REMINDER.value: Notice.REMINDER,
}
_TIME = TypeAdapter(datetime)


@dataclass(frozen=True, slots=True)
class MailSettings:
    sender: str
    public_url: str
    max_attempts: int


class Mail:
    def __init__(
        self,
        db: Database,
        jobs: JobQueue,
        mailer: SmtpMailer,
        tokens: UnsubscribeTokens,
        clock: Clock,
        settings: MailSettings,
    ) -> None:
        self._db = db
        self._jobs = jobs
        self._mailer = mailer
        self._tokens = tokens
        self._clock = clock
        self._settings = settings
        self._domain = sender_domain(settings.sender)

    def unsubscribe_url(self, user_id: uuid.UUID) -> str:
        return f"{self._settings.public_url}{UNSUBSCRIBE_PATH}?token={self._tokens.token(user_id)}"

    async def enqueue(self, session: AsyncSession, events: list[Envelope]) -> None:
        """One job per event and person owed a message, in the transaction that numbers the events."""
        owed = [event for event in events if event.event in _NOTICES]
        if not owed:
            return
        moves = await _moves(session, [event for event in owed if event.event == EventType.UPDATED.value])
        people = {person for event in owed for person in (event.user_id, event.provider_id)}
        willing = set(
            await session.scalars(select(User.id).where(User.id.in_(people), User.email_notifications.is_(True)))
        )
        now = self._clock()
        for event in owed:
            previous = None
            if event.event == EventType.UPDATED.value:
                previous = moves.get((uuid.UUID(event.data["id"]), int(event.data["version"])))
                if previous is None:
                    continue  # the notes changed, not the time
            for person in (event.user_id, event.provider_id):
                if person not in willing:
                    continue
                payload = {
                    "notice": _NOTICES[event.event].value,
                    "eventId": event.id,
                    "recipientId": str(person),
                    "booking": event.data,
                    "previous": previous,
                }
                job = NewJob(kind=KIND, payload=payload, run_at=now, max_attempts=self._settings.max_attempts)
                self._jobs.schedule(session, job, now=now)

    async def deliver(self, job: ClaimedJob, _session: AsyncSession) -> None:
        """The job handler: reads on a session of its own (the job's write session holds nothing while SMTP talks)."""
        payload = job.payload
        data = payload["booking"]
        recipient_id = uuid.UUID(payload["recipientId"])
        user_id, provider_id = uuid.UUID(data["userId"]), uuid.UUID(data["providerId"])
        async with self._db.read_sessions() as reads:
            people = {
                row.id: row
                for row in await reads.execute(
                    select(User.id, User.name, User.email, User.role, User.time_zone, User.email_notifications).where(
                        User.id.in_({user_id, provider_id})
                    )
                )
            }
            recipient = people.get(recipient_id)
            if recipient is None or not recipient.email_notifications:
                log.info("mail_not_sent", job_id=job.id, reason="recipient gone or unsubscribed")
                return
            zone = recipient.time_zone
            if zone is None and recipient.role is Role.PROVIDER:
                zone = await reads.scalar(
                    select(ProviderSchedule.time_zone).where(ProviderSchedule.provider_id == recipient_id)
                )
        if user_id not in people or provider_id not in people:
            return  # an account was deleted since
        user, provider = people[user_id], people[provider_id]
        booking = ical.CalendarBooking(
            id=uuid.UUID(data["id"]),
            version=int(data["version"]),
            start_time=_TIME.validate_python(data["startTime"]),
            end_time=_TIME.validate_python(data["endTime"]),
            cancelled=data["status"] == "cancelled",
            notes=data.get("notes"),
            updated_at=_TIME.validate_python(data["updatedAt"]),
            user=ical.Party(user.name, user.email),
            provider=ical.Party(provider.name, provider.email),
        )
        previous = payload.get("previous")
        letter = Letter(
            notice=Notice(payload["notice"]),
            booking=booking,
            recipient=Recipient(recipient.name, recipient.email, zone or "UTC"),
            other_name=provider.name if recipient_id == user_id else user.name,
            previous=None
            if previous is None
            else (_TIME.validate_python(previous["startTime"]), _TIME.validate_python(previous["endTime"])),
            reason=data.get("cancelReason"),
            unsubscribe_url=self.unsubscribe_url(recipient_id),
            # The same on every attempt of this job: a message sent twice (an answer lost after the server took
            # it) is recognisably one message.
            message_id=f"<booking-mail.{job.id}@{self._domain}>",
            sent_at=self._clock(),
        )
        await self._mailer.send(compose(letter, sender=self._settings.sender))
        log.info("mail_sent", job_id=job.id, notice=letter.notice.value, booking_id=str(booking.id))


async def _moves(session: AsyncSession, updates: list[Envelope]) -> dict[tuple[uuid.UUID, int], dict[str, Any]]:
    """For each update that moved its booking, the times before it, from the booking's history."""
    if not updates:
        return {}
    by_key = {(uuid.UUID(event.data["id"]), int(event.data["version"])): event for event in updates}
    rows = await session.execute(
        select(HistoryEntry.booking_id, HistoryEntry.version, HistoryEntry.changes).where(
            tuple_(HistoryEntry.booking_id, HistoryEntry.version).in_(list(by_key))
        )
    )
    moves = {}
    for booking_id, version, changes in rows:
        if "startTime" not in changes and "endTime" not in changes:
            continue
        now = by_key[(booking_id, version)].data
        moves[(booking_id, version)] = {
            "startTime": changes.get("startTime", {}).get("from", now["startTime"]),
            "endTime": changes.get("endTime", {}).get("from", now["endTime"]),
        }
    return moves
