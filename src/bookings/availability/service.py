"""What can be done with availability: keep a provider's schedule and overrides, search their open slots, and give
the booking path the rules a slot must follow.

The booking path on PostgreSQL checks a slot against ``rules()``, which this process keeps in memory: the write
then compares the version it was checked against with the stored one, under the provider's lock, so a schedule
saved on another instance is caught there (``Verdict.SCHEDULE_CHANGED``), and the check runs again on fresh rules.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from bookings.auth.principal import Principal
from bookings.availability import repository
from bookings.availability.errors import AvailabilityNotFound
from bookings.availability.models import AvailabilityOverride, ProviderSchedule
from bookings.availability.rules import WEEKDAYS, Busy, Rules, day_bounds, days_of, local_date, offered, wall
from bookings.availability.schemas import (
    IntervalIn,
    IntervalOut,
    OverrideIn,
    OverrideOut,
    ScheduleIn,
    ScheduleOut,
    Slot,
    SlotsOut,
    WeeklyHoursOut,
)
from bookings.db import Database, after_commit
from bookings.errors import InvalidInput, NotFound, NotPermitted, PreconditionFailed
from bookings.kit import conditional
from bookings.kit.locks import lock_provider
from bookings.kit.pagination import Page, PageRequest, paged
from bookings.kit.time import Clock
from bookings.users import repository as users
from bookings.users.models import Role

BusyReader = Callable[
    [AsyncSession, uuid.UUID, datetime, datetime], Awaitable[list[tuple[datetime, datetime, datetime]]]
]
Fetch = Callable[..., Awaitable[Sequence[Mapping[str, Any]]]]  # (sql, *args) -> rows
MAX_SEARCH_DAYS = 31
MAX_OVERRIDE_DAYS_AHEAD = 730
CACHED_PROVIDERS = 10_000
_DATE = re.compile(r"\d{4}-\d\d-\d\d")
_INSTANT = re.compile(r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)")
NO_SCHEDULE = "This provider has not set their availability."


class ProviderNotFound(NotFound):
    title, slug = "Provider not found", "provider-not-found"


def _out_intervals(stored: list[list[str]]) -> list[IntervalOut]:
    return [IntervalOut(start=start, end=end) for start, end in stored]


def schedule_out(row: ProviderSchedule) -> ScheduleOut:
    return ScheduleOut(
        provider_id=row.provider_id,
        time_zone=row.time_zone,
        weekly_hours=WeeklyHoursOut(**{day: _out_intervals(row.weekly_hours.get(day, [])) for day in WEEKDAYS}),
        slot_length_minutes=row.slot_length,
        slot_interval_minutes=row.slot_interval,
        buffer_before_minutes=row.buffer_before,
        buffer_after_minutes=row.buffer_after,
        min_notice_minutes=row.min_notice,
        max_horizon_days=row.max_horizon_days,
        max_bookings_per_day=row.max_per_day,
        version=row.version,
        updated_at=row.updated_at,
    )


def override_out(row: AvailabilityOverride) -> OverrideOut:
    return OverrideOut(date=row.day, intervals=_out_intervals(row.intervals), note=row.note, updated_at=row.updated_at)


def _stored(intervals: list[IntervalIn]) -> list[list[str]]:
    return [[i.start, i.end] for i in intervals]


def _utc(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _window(raw_from: str | None, raw_to: str | None, zone_name: str) -> tuple[datetime, datetime, str, str]:
    """The search's ``[start, end)`` in UTC, and ``from``/``to`` as the answer repeats them."""
    if raw_from is None or raw_to is None:
        missing = "from" if raw_from is None else "to"
        raise InvalidInput.on(f"query.{missing}", "Give both `from` and `to`.", "missing")
    if _DATE.fullmatch(raw_from) and _DATE.fullmatch(raw_to):
        try:
            first, last = date.fromisoformat(raw_from), date.fromisoformat(raw_to)
        except ValueError as exc:
            raise InvalidInput.on("query.from", "Not a date.", "date_format") from exc
        if last < first:
            raise InvalidInput.on("query.to", "`to` is before `from`.", "window_reversed")
        if (last - first).days + 1 > MAX_SEARCH_DAYS:
            raise InvalidInput.on("query.to", f"Search at most {MAX_SEARCH_DAYS} days.", "window_too_long")
        zone = ZoneInfo(zone_name)
        return wall(first, 0, zone), wall(last + timedelta(days=1), 0, zone), raw_from, raw_to
    for name, raw in (("from", raw_from), ("to", raw_to)):
        if not _INSTANT.fullmatch(raw):
            raise InvalidInput.on(
                f"query.{name}",
                "`from` and `to` are both dates (YYYY-MM-DD) or both RFC 3339 date-times with an offset.",
                "rfc3339_datetime",
            )
    try:
        start, end = (datetime.fromisoformat(raw.upper()).astimezone(UTC) for raw in (raw_from, raw_to))
    except ValueError as exc:
        raise InvalidInput.on("query.from", "Not a date-time.", "rfc3339_datetime") from exc
    if end <= start:
        raise InvalidInput.on("query.to", "`to` is not after `from`.", "window_reversed")
    if end - start > timedelta(days=MAX_SEARCH_DAYS):
        raise InvalidInput.on("query.to", f"Search at most {MAX_SEARCH_DAYS} days.", "window_too_long")
    return start, end, _utc(start), _utc(end)


class Availability:
    """``fetch``: a read on the request path's pool (PostgreSQL's asyncpg store), so that a create never takes a
    connection of the other pool; without it (SQLite) ``rules()`` reads through SQLAlchemy."""

    def __init__(self, db: Database, clock: Clock, busy: BusyReader, fetch: Fetch | None = None) -> None:
        self._db = db
        self._clock = clock
        self._busy = busy
        self._fetch = fetch
        self._cached: OrderedDict[uuid.UUID, Rules | None] = OrderedDict()

    # The booking path.

    async def rules(self, provider_id: uuid.UUID, *, fresh: bool = False) -> Rules | None:
        """The provider's rules as this process last read them (``None``: no schedule); read again when asked."""
        if not fresh and provider_id in self._cached:
            self._cached.move_to_end(provider_id)
            return self._cached[provider_id]
        if self._fetch is not None:
            first, last = self._override_days()
            rows = await self._fetch(repository.RULES_SQL, provider_id, first, last)
            found = repository.rules_of_row(rows[0]) if rows else None
        else:
            async with self._db.read_sessions() as session:
                found = await self.rules_in(session, provider_id)
        self._cached[provider_id] = found
        self._cached.move_to_end(provider_id)
        if len(self._cached) > CACHED_PROVIDERS:
            self._cached.popitem(last=False)
        return found

    async def rules_in(self, session: AsyncSession, provider_id: uuid.UUID) -> Rules | None:
        """The provider's rules as ``session`` sees them now, with every override from yesterday on."""
        row = await repository.schedule(session, provider_id)
        if row is None:
            return None
        overrides = await repository.overrides_between(session, provider_id, *self._override_days())
        return repository.rules_of(row, overrides)

    def _override_days(self) -> tuple[date, date]:
        """The overrides a check may need: from the day before yesterday (UTC) to the farthest one allowed."""
        today = self._clock().date()
        return today - timedelta(days=2), today + timedelta(days=MAX_OVERRIDE_DAYS_AHEAD + 2)

    def forget(self, provider_id: uuid.UUID) -> None:
        self._cached.pop(provider_id, None)

    # The API.

    async def schedule(self, session: AsyncSession, provider_id: uuid.UUID) -> ScheduleOut:
        row = await repository.schedule(session, provider_id)
        if row is None:
            await self._provider(session, provider_id)  # an unknown provider is its own 404
            raise AvailabilityNotFound(NO_SCHEDULE)
        return schedule_out(row)

    async def put(
        self, session: AsyncSession, caller: Principal, provider_id: uuid.UUID, body: ScheduleIn, if_match: str | None
    ) -> tuple[ScheduleOut, bool]:
        """Replace the schedule; ``True`` when it is the provider's first."""
        await self._may_change(session, caller, provider_id)
        await lock_provider(session, provider_id)
        row = await repository.schedule(session, provider_id, lock=True)
        if (
            row is not None
            and if_match is not None
            and not conditional.if_match(if_match, conditional.etag(row.version))
        ):
            raise PreconditionFailed(
                f"The schedule is at version {row.version}, not the one `If-Match` names.",
                etag=conditional.etag(row.version),
            )
        created = row is None
        if row is None:
            row = ProviderSchedule(provider_id=provider_id, version=0)
            session.add(row)
        hours = body.weekly_hours
        row.time_zone = body.time_zone
        row.weekly_hours = {day: _stored(getattr(hours, day)) for day in WEEKDAYS}
        row.slot_length = body.slot_length_minutes
        row.slot_interval = body.slot_interval_minutes or body.slot_length_minutes
        row.buffer_before = body.buffer_before_minutes
        row.buffer_after = body.buffer_after_minutes
        row.min_notice = body.min_notice_minutes
        row.max_horizon_days = body.max_horizon_days
        row.max_per_day = body.max_bookings_per_day
        row.version += 1
        row.updated_at = self._clock()
        await session.flush()
        after_commit(session, lambda: self.forget(provider_id))
        return schedule_out(row), created

    async def put_override(
        self, session: AsyncSession, caller: Principal, provider_id: uuid.UUID, day: date, body: OverrideIn
    ) -> tuple[OverrideOut, bool]:
        schedule = await self._changing(session, caller, provider_id)
        self._check_override_date(schedule, day)
        row = await repository.override(session, provider_id, day)
        created = row is None
        if row is None:
            row = AvailabilityOverride(provider_id=provider_id, day=day)
            session.add(row)
        row.intervals = _stored(body.intervals)
        row.note = body.note
        row.updated_at = self._clock()
        schedule.version += 1  # the booking path checks slots against the version: overrides are part of it
        await session.flush()
        after_commit(session, lambda: self.forget(provider_id))
        return override_out(row), created

    async def delete_override(
        self, session: AsyncSession, caller: Principal, provider_id: uuid.UUID, day: date
    ) -> None:
        schedule = await self._changing(session, caller, provider_id)
        row = await repository.override(session, provider_id, day)
        if row is None:
            raise AvailabilityNotFound("No override for this date.")
        await session.delete(row)
        schedule.version += 1
        await session.flush()
        after_commit(session, lambda: self.forget(provider_id))

    async def overrides(
        self, session: AsyncSession, provider_id: uuid.UUID, first: date | None, last: date | None, paging: PageRequest
    ) -> Page[OverrideOut]:
        if await repository.schedule(session, provider_id) is None:
            await self._provider(session, provider_id)
            raise AvailabilityNotFound(NO_SCHEDULE)
        first = first or date.min
        last = last or date.max
        rows, total = await repository.override_page(session, provider_id, first, last, paging)
        return paged(rows, total, paging, override_out, lambda row: (row.day,))

    async def slots(
        self,
        session: AsyncSession,
        provider_id: uuid.UUID,
        raw_from: str | None,
        raw_to: str | None,
        time_zone: str | None,
    ) -> SlotsOut:
        rules = await self.rules_in(session, provider_id)
        if rules is None:
            await self._provider(session, provider_id)
            raise AvailabilityNotFound(NO_SCHEDULE)
        viewer = time_zone or rules.time_zone
        start, end, shown_from, shown_to = _window(raw_from, raw_to, viewer)
        days = list(days_of(rules, (start, end)))
        margin = timedelta(minutes=max(rules.buffer_before, rules.buffer_after) + rules.slot_length)
        lo, hi = day_bounds(days[0], rules.zone)[0] - margin, day_bounds(days[-1], rules.zone)[1] + margin
        rows = await self._busy(session, provider_id, lo, hi)
        zone = rules.zone
        per_day = Counter(local_date(begin, zone) for begin, _, _ in rows) if rules.max_per_day else Counter()
        busy = Busy(ranges=[(blocked_start, blocked_end) for _, blocked_start, blocked_end in rows], per_day=per_day)
        found = offered(rules, (start, end), self._clock(), busy)
        return SlotsOut(
            provider_id=provider_id,
            time_zone=viewer,
            provider_time_zone=rules.time_zone,
            from_=shown_from,
            to=shown_to,
            slot_length_minutes=rules.slot_length,
            slots=[Slot(start_time=s, end_time=e) for s, e in found],
        )

    # Rules of access.

    async def _provider(self, session: AsyncSession, provider_id: uuid.UUID) -> None:
        if await users.role_of(session, provider_id) is not Role.PROVIDER:
            raise ProviderNotFound("No provider has this id.")

    async def _may_change(self, session: AsyncSession, caller: Principal, provider_id: uuid.UUID) -> None:
        await self._provider(session, provider_id)
        if caller.role is not Role.ADMIN and caller.user_id != provider_id:
            raise NotPermitted("Only the provider or an admin can change a provider's availability.")

    async def _changing(self, session: AsyncSession, caller: Principal, provider_id: uuid.UUID) -> ProviderSchedule:
        await self._may_change(session, caller, provider_id)
        await lock_provider(session, provider_id)
        schedule = await repository.schedule(session, provider_id, lock=True)
        if schedule is None:
            raise AvailabilityNotFound(f"{NO_SCHEDULE} Set the weekly hours first.")
        return schedule

    def _check_override_date(self, schedule: ProviderSchedule, day: date) -> None:
        today = local_date(self._clock(), ZoneInfo(schedule.time_zone))
        if day < today:
            raise InvalidInput.on("date", "The date has passed where the provider is.", "date_in_past")
        if day > today + timedelta(days=MAX_OVERRIDE_DAYS_AHEAD):
            raise InvalidInput.on("date", f"At most {MAX_OVERRIDE_DAYS_AHEAD} days ahead.", "date_too_far")
