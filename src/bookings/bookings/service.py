"""What can be done with bookings: create, read, list, reschedule, cancel.

Writes answer with an ``Outcome`` (status, JSON bytes, ``Location``/``ETag``): what is sent, and what an
``Idempotency-Key`` stores in the write's own transaction to replay.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from bookings.auth.principal import Principal
from bookings.availability.errors import OutsideAvailability
from bookings.availability.rules import Rules, day_bounds, local_date, refusal
from bookings.availability.service import Availability
from bookings.bookings import history, policy, repository
from bookings.bookings.cache import ADMINS, ReadCache
from bookings.bookings.models import Booking, BookingStatus, HistoryAction
from bookings.bookings.reminders import Reminders
from bookings.bookings.schemas import BookingCreate, BookingOut, BookingPatch, BookingWindow
from bookings.bookings.store import (
    BookingStore,
    ListQuery,
    NewBooking,
    ScheduleChanged,
    SlotGuard,
    is_overlap,
    refuse,
    slot_taken,
)
from bookings.config import Settings
from bookings.db import after_commit
from bookings.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    NotPermitted,
    PreconditionFailed,
    PreconditionRequired,
    ServiceUnavailable,
)
from bookings.events.outbox import Outbox
from bookings.events.schemas import EventType
from bookings.idempotency import repository as idempotency
from bookings.idempotency.keys import IdempotencyKey, Outcome
from bookings.kit import conditional
from bookings.kit.locks import lock_provider
from bookings.kit.pagination import Page, PageRequest, Position, paged
from bookings.kit.time import Clock
from bookings.ops.metrics import Metrics
from bookings.users.models import Role


class BookingNotFound(NotFound):
    title, slug = "Booking not found", "booking-not-found"


NOT_VISIBLE = "No booking with this id is visible to you."
SCHEDULE_ATTEMPTS = 3  # a schedule saved on another instance between the check and the write: check again
PAGE = TypeAdapter(Page[BookingOut])


@dataclass(frozen=True, slots=True)
class Change:
    """A request to change a booking: by whom, on what condition (``If-Match``), under which key."""

    caller: Principal
    booking_id: uuid.UUID
    if_match: str | None = None
    key: IdempotencyKey | None = None
    request_id: str | None = None


def _answer(booking: BookingOut, status: int = 200) -> Outcome:
    headers = {"ETag": conditional.etag(booking.version)}
    if status == 201:
        headers["Location"] = f"/v1/bookings/{booking.id}"
    return Outcome(status, booking.model_dump_json(by_alias=True).encode(), headers)


def _slot(
    rules: Rules | None, start: datetime, end: datetime, now: datetime
) -> tuple[SlotGuard, tuple[datetime, datetime]]:
    """Whether ``[start, end)`` is one of the provider's slots (the daily limit aside: the write counts under the
    provider's lock), what the write must check, and the range the booking blocks (its buffers around it)."""
    if rules is None:
        return SlotGuard(), (start, end)  # no schedule: any time, no buffers
    if (why := refusal(rules, start, end, now)) is not None:
        raise OutsideAvailability.of(why)
    day_start, day_end = day_bounds(local_date(start, rules.zone), rules.zone)
    return SlotGuard(rules.version, rules.max_per_day, day_start, day_end), rules.blocked(start, end)


def _tracked(booking: Booking) -> dict[str, Any]:
    return {name: getattr(booking, name) for name in history.TRACKED}


def _same(booking: BookingOut) -> BookingOut:
    return booking


def _position(booking: BookingOut) -> Position:
    return (booking.start_time, booking.id)


class BookingService:
    """Reads answer with JSON bytes (``get``, ``list``): what the cache keeps, serialised once."""

    def __init__(
        self,
        settings: Settings,
        store: BookingStore,
        cache: ReadCache,
        outbox: Outbox,
        reminders: Reminders,
        metrics: Metrics,
        clock: Clock,
        availability: Availability,
    ) -> None:
        self._store = store
        self._availability = availability
        self._cache = cache
        self._outbox = outbox
        self._reminders = reminders
        self._metrics = metrics
        self._clock = clock
        self._require_if_match = settings.require_if_match
        self.longest = timedelta(minutes=settings.max_booking_minutes)

    async def create(
        self,
        caller: Principal,
        data: BookingCreate,
        key: IdempotencyKey | None = None,
        request_id: str | None = None,
    ) -> Outcome:
        if not policy.can_create(caller):
            raise NotPermitted("Only accounts with the `user` role can make bookings.")
        now = self._clock()
        self._check_times(data.start_time, data.end_time, now)
        booking = BookingOut(
            id=uuid.uuid4(),
            user_id=caller.user_id,
            provider_id=data.provider_id,
            start_time=data.start_time.astimezone(UTC),
            end_time=data.end_time.astimezone(UTC),
            status=BookingStatus.CONFIRMED,
            notes=data.notes,
            version=1,
            created_at=now,
            updated_at=now,
        )
        outcome = _answer(booking, 201)
        made = history.changes({}, {name: getattr(booking, name) for name in history.TRACKED if name != "status"})
        revision = history.Revision(1, HistoryAction.CREATED, caller, request_id, made, now)
        snapshot = booking.model_dump(mode="json", by_alias=True)
        reminder = self._reminders.job_for(booking.id, booking.start_time, now)
        for attempt in range(SCHEDULE_ATTEMPTS):
            rules = await self._availability.rules(booking.provider_id, fresh=attempt > 0)
            guard, blocked = _slot(rules, booking.start_time, booking.end_time, now)
            new = NewBooking(
                booking=booking,
                snapshot=snapshot,
                event=EventType.CREATED.value,
                actor_id=caller.user_id,
                reminder=reminder,
                now=now,
                outcome=outcome,
                revision=revision,
                blocked_start=blocked[0],
                blocked_end=blocked[1],
                guard=guard,
                key=key,
            )
            try:
                prior = await self._store.create(new)  # committed when it returns
            except ScheduleChanged:
                continue  # saved since this process read it: check the slot against the schedule as it is now
            if prior is not None:
                return prior
            break
        else:
            raise ServiceUnavailable("The provider's schedule keeps changing; retry in a moment.")
        self._cache.forget(booking.id, booking.user_id, booking.provider_id)
        self._metrics.bookings_created.inc()
        return outcome

    async def get(self, caller: Principal, booking_id: uuid.UUID) -> tuple[bytes, str]:
        """The booking's JSON and its ``ETag``."""
        visible = policy.visible_to(caller)
        if (cached := self._cache.booking(booking_id)) is not None:
            if not visible.admits(cached.user_id, cached.provider_id):
                raise BookingNotFound(NOT_VISIBLE)
            return cached.body, cached.etag
        ticket = self._cache.ticket()
        booking = await self._store.find(visible, booking_id)
        if booking is None:
            raise BookingNotFound(NOT_VISIBLE)
        body, etag = booking.model_dump_json(by_alias=True).encode(), conditional.etag(booking.version)
        self._cache.put_booking(ticket, booking.id, booking.user_id, booking.provider_id, body, etag)
        return body, etag

    async def list(
        self, caller: Principal, window: BookingWindow | None, paging: PageRequest
    ) -> tuple[bytes, str | None]:
        """The page's JSON and its ``Link`` header (``None`` on the last page)."""
        now = self._clock()
        scope = ADMINS if caller.role is Role.ADMIN else caller.user_id
        key = (caller.role, window, paging.page, paging.limit, paging.cursor)
        if (cached := self._cache.page(scope, key, now)) is not None:
            return cached.body, cached.link
        ticket = self._cache.ticket()
        query = ListQuery(window=window, paging=paging, now=now, longest=self.longest)
        found = await self._store.page(policy.visible_to(caller), query)
        page = paged(found.items, found.total, paging, _same, _position)
        body = PAGE.dump_json(page, by_alias=True)
        link = None if page.next_cursor is None else paging.link(page.next_cursor)
        self._cache.put_page(ticket, scope, key, body, found.changes_at, link)
        return body, link

    async def close(self) -> None:
        await self._store.close()

    async def update(self, session: AsyncSession, change: Change, data: BookingPatch) -> Outcome:
        """Reschedule (new start and/or end) or edit the notes."""
        if change.key is not None and (prior := await idempotency.claim(session, change.key)) is not None:
            return prior
        caller = change.caller
        changes = data.model_fields_set  # never empty: the schema requires one field
        booking = await self._locked(session, caller, change.booking_id)
        if not policy.can_edit(caller, booking):
            raise NotPermitted("Only the booking's user or an admin can reschedule or edit it.")
        self._check_version(booking, change.if_match)
        if booking.status is BookingStatus.CANCELLED:
            raise Conflict("A cancelled booking cannot be changed.")
        now = self._clock()
        before = _tracked(booking)
        moved = False
        if data.start_time is not None or data.end_time is not None:
            start = data.start_time or booking.start_time
            end = data.end_time or booking.end_time
            self._check_times(start, end, now)
            await lock_provider(session, booking.provider_id)
            rules = await self._availability.rules_in(session, booking.provider_id)  # fresh, under the lock
            guard, (blocked_start, blocked_end) = _slot(rules, start, end, now)
            refuse(await repository.verdict(session, booking.provider_id, guard, besides=booking.id))
            moved = start != booking.start_time
            booking.start_time, booking.end_time = start, end
            booking.blocked_start, booking.blocked_end = blocked_start, blocked_end
        if "notes" in changes:
            booking.notes = data.notes
        booking.version += 1
        booking.updated_at = now
        await self._save(session, booking)
        if moved:
            await self._reminders.move(session, booking, now)
        changed = history.changes(before, _tracked(booking))
        action = HistoryAction.RESCHEDULED if {"startTime", "endTime"} & set(changed) else HistoryAction.UPDATED
        self._revised(session, booking, change, action, changed, now)
        return self._changed(session, EventType.UPDATED, booking, change, now)

    async def cancel(self, session: AsyncSession, change: Change, reason: str | None) -> Outcome:
        """Cancel once; cancelling again returns the booking unchanged (safe to retry, whatever ``If-Match``
        says: RFC 9110 §13.1.1 lets a server answer 2xx when the state already is what the request asks for)."""
        if change.key is not None and (prior := await idempotency.claim(session, change.key)) is not None:
            return prior
        caller = change.caller
        booking = await self._locked(session, caller, change.booking_id)
        if not policy.can_cancel(caller, booking):
            raise NotPermitted("You may not cancel this booking.")
        if booking.status is BookingStatus.CANCELLED:
            return self._unchanged(session, booking, change)
        self._check_version(booking, change.if_match)
        now = self._clock()
        if booking.end_time <= now:
            raise Conflict("The booking has already ended.")
        before = _tracked(booking)
        booking.status = BookingStatus.CANCELLED
        booking.cancel_reason = reason
        booking.version += 1
        booking.updated_at = now
        await session.flush()
        await self._reminders.cancel(session, booking, now)
        after_commit(session, self._metrics.bookings_cancelled.inc)
        changed = history.changes(before, _tracked(booking))
        self._revised(session, booking, change, HistoryAction.CANCELLED, changed, now, reason)
        return self._changed(session, EventType.CANCELLED, booking, change, now)

    def _changed(
        self, session: AsyncSession, event: EventType, booking: Booking, change: Change, now: datetime
    ) -> Outcome:
        """Every change appends its event to the outbox, and stores its outcome under its key, in the change's
        own transaction."""
        out = BookingOut.model_validate(booking)
        after_commit(session, lambda: self._cache.forget(out.id, out.user_id, out.provider_id))
        self._outbox.record(
            session, event, out.model_dump(mode="json", by_alias=True), actor_id=change.caller.user_id, now=now
        )
        outcome = _answer(out)
        if change.key is not None:
            idempotency.remember(session, change.key, outcome, now)
        return outcome

    def _revised(
        self,
        session: AsyncSession,
        booking: Booking,
        change: Change,
        action: HistoryAction,
        changed: dict[str, dict[str, Any]],
        now: datetime,
        reason: str | None = None,
    ) -> None:
        revision = history.Revision(booking.version, action, change.caller, change.request_id, changed, now, reason)
        history.record(session, booking.id, revision)

    def _unchanged(self, session: AsyncSession, booking: Booking, change: Change) -> Outcome:
        outcome = _answer(BookingOut.model_validate(booking))
        if change.key is not None:
            idempotency.remember(session, change.key, outcome, self._clock())
        return outcome

    def _check_version(self, booking: Booking, if_match: str | None) -> None:
        """``If-Match`` against the locked row: a stale one writes nothing."""
        current = conditional.etag(booking.version)
        if if_match is None:
            if self._require_if_match:
                raise PreconditionRequired("Send `If-Match` with the `ETag` you last read of this booking.")
            return
        if not conditional.if_match(if_match, current):
            raise PreconditionFailed(
                f"The booking is at version {booking.version}, not the one `If-Match` names.", etag=current
            )

    async def _locked(self, session: AsyncSession, caller: Principal, booking_id: uuid.UUID) -> Booking:
        """The booking to change, if the caller may see it, locked for this transaction."""
        booking = await repository.get(session, policy.visible_to(caller), booking_id)
        if booking is None:
            raise BookingNotFound(NOT_VISIBLE)
        return booking

    def _check_times(self, start: datetime, end: datetime, now: datetime) -> None:
        if start <= now:
            raise InvalidInput.on("startTime", "The booking must start in the future.", "start_in_past")
        if end <= start:
            raise InvalidInput.on("endTime", "The booking must end after it starts.", "end_before_start")
        if end - start > self.longest:
            raise InvalidInput.on("endTime", f"A booking lasts at most {self.longest} (h:mm:ss).", "booking_too_long")

    async def _save(self, session: AsyncSession, booking: Booking) -> None:
        """Flush the booking, turning the database's overlap refusal into ``SlotTaken``.

        No overlap query first: the constraint (PostgreSQL) or trigger (SQLite) answers in the same statement,
        and is the only answer that holds under concurrency anyway.
        """
        session.add(booking)
        try:
            await session.flush()
        except DBAPIError as exc:
            if is_overlap(exc.orig):
                raise slot_taken() from exc
            raise
