"""When a provider can be booked: one pure function that both slot search and booking call (design invariant 8).

Wall-clock rules are kept as local ``HH:MM`` (minutes since midnight, ``1440`` for an end of ``24:00``) plus an
IANA zone, and resolved on their own date with ``zoneinfo`` at ``fold=0`` (RFC 5545 §3.3.5): a repeated time is
its first occurrence, a time inside a gap takes the offset before the gap. No offset is ever carried from one
instant to another. Slot length and step are elapsed minutes from each interval's start, so a 00:00-06:00 night
has 5 one-hour slots on the spring-forward date and 7 on the fall-back date.
"""

from __future__ import annotations

import bisect
import enum
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAY_MINUTES = 1440
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True, slots=True)
class Interval:
    """``[start, end)`` in minutes since local midnight; ``end`` may be 1440 (24:00)."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Rules:
    """A provider's schedule, and the overrides of single dates (``[]``: closed that day)."""

    time_zone: str
    weekly: Mapping[int, Sequence[Interval]]  # weekday (Monday 0) -> intervals, ascending
    slot_length: int
    slot_interval: int
    buffer_before: int = 0
    buffer_after: int = 0
    min_notice: int = 0
    max_horizon_days: int | None = None
    max_per_day: int | None = None
    version: int = 1
    overrides: Mapping[date, Sequence[Interval]] = field(default_factory=dict)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def intervals(self, day: date) -> Sequence[Interval]:
        if day in self.overrides:
            return self.overrides[day]
        return self.weekly.get(day.weekday(), ())

    def blocked(self, start: datetime, end: datetime) -> tuple[datetime, datetime]:
        """The range a booking of ``[start, end)`` keeps from other bookings: its buffers around it."""
        return start - timedelta(minutes=self.buffer_before), end + timedelta(minutes=self.buffer_after)


def wall(day: date, minutes: int, zone: ZoneInfo) -> datetime:
    """The instant (UTC) of local ``minutes`` on ``day`` in ``zone``; 1440 is the next day's midnight."""
    if minutes >= DAY_MINUTES:
        day, minutes = day + timedelta(days=minutes // DAY_MINUTES), minutes % DAY_MINUTES
    local = datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=zone)  # fold=0
    return local.astimezone(UTC)


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """``[start, end)`` of the local ``day`` in UTC: 23 or 25 hours long on transition days."""
    return wall(day, 0, zone), wall(day + timedelta(days=1), 0, zone)


def local_date(moment: datetime, zone: ZoneInfo) -> date:
    return moment.astimezone(zone).date()


def candidate_slots(rules: Rules, day: date) -> Iterator[tuple[datetime, datetime]]:
    """Every slot of ``day``'s intervals, in order, before notice, horizon, limit and other bookings."""
    zone = rules.zone
    length, step = timedelta(minutes=rules.slot_length), timedelta(minutes=rules.slot_interval)
    for interval in rules.intervals(day):
        start, end = wall(day, interval.start, zone), wall(day, interval.end, zone)
        slot = start
        while slot + length <= end:
            yield slot, slot + length
            slot += step


class Refusal(enum.StrEnum):
    """Why a time is not an offered slot (``errors[].type`` of ``/problems/outside-availability``)."""

    OUTSIDE_HOURS = "outside_hours"
    OFF_GRID = "off_grid"
    WRONG_LENGTH = "wrong_length"
    TOO_SOON = "too_soon"
    TOO_FAR = "too_far"


def refusal(rules: Rules, start: datetime, end: datetime, now: datetime) -> Refusal | None:
    """Whether ``[start, end)`` is one of the provider's slots, at this time, ignoring other bookings and the daily
    limit (those need the write transaction's lock). ``None``: it is."""
    zone = rules.zone
    day = local_date(start, zone)
    inside = None
    for interval in rules.intervals(day):
        if wall(day, interval.start, zone) <= start and end <= wall(day, interval.end, zone):
            inside = interval
            break
    if inside is None:
        return Refusal.OUTSIDE_HOURS
    if end - start != timedelta(minutes=rules.slot_length):
        return Refusal.WRONG_LENGTH
    if (start, end) not in set(candidate_slots(rules, day)):
        return Refusal.OFF_GRID
    if start < now + timedelta(minutes=rules.min_notice):
        return Refusal.TOO_SOON
    if rules.max_horizon_days is not None and start > now + timedelta(days=rules.max_horizon_days):
        return Refusal.TOO_FAR
    return None


@dataclass(frozen=True, slots=True)
class Busy:
    """What a search must avoid: other bookings' blocked ranges (whose they are is not known here), and how many
    confirmed bookings each local day already has."""

    ranges: Sequence[tuple[datetime, datetime]]
    per_day: Mapping[date, int] = field(default_factory=dict)


class _Sweep:
    """Blocked ranges sorted by start, with the latest end so far: whether ``[lo, hi)`` meets any is one bisect."""

    def __init__(self, ranges: Sequence[tuple[datetime, datetime]]) -> None:
        ordered = sorted(ranges)
        self._starts = [begin for begin, _ in ordered]
        self._reach: list[datetime] = []
        for _, finish in ordered:
            self._reach.append(max(finish, self._reach[-1]) if self._reach else finish)

    def meets(self, lo: datetime, hi: datetime) -> bool:
        before = bisect.bisect_left(self._starts, hi)  # the ranges that start before hi
        return before > 0 and self._reach[before - 1] > lo


def offered(
    rules: Rules, window: tuple[datetime, datetime], now: datetime, busy: Busy
) -> list[tuple[datetime, datetime]]:
    """The slots a search offers in ``[window)``: on the grid, past the notice, inside the horizon, on a day under its
    limit, and with its buffers clear of every other booking's blocked range. One sweep, no per-slot query."""
    zone = rules.zone
    first, last = local_date(window[0], zone), local_date(window[1], zone)
    sweep = _Sweep(busy.ranges)
    before, after = timedelta(minutes=rules.buffer_before), timedelta(minutes=rules.buffer_after)
    soonest = now + timedelta(minutes=rules.min_notice)
    latest = None if rules.max_horizon_days is None else now + timedelta(days=rules.max_horizon_days)
    found: list[tuple[datetime, datetime]] = []
    day = first - timedelta(days=1)  # a slot of the day before may start inside the window
    while day <= last:
        full = rules.max_per_day is not None and busy.per_day.get(day, 0) >= rules.max_per_day
        if not full:
            for start, end in candidate_slots(rules, day):
                if not (window[0] <= start < window[1]) or start < soonest or (latest and start > latest):
                    continue
                if not sweep.meets(start - before, end + after):  # the slot's blocked range (Rules.blocked)
                    found.append((start, end))
        day += timedelta(days=1)
    return found


def days_of(rules: Rules, window: tuple[datetime, datetime]) -> Iterable[date]:
    """The provider-local dates whose slots a search of ``window`` looks at."""
    zone = rules.zone
    day, last = local_date(window[0], zone) - timedelta(days=1), local_date(window[1], zone)
    while day <= last:
        yield day
        day += timedelta(days=1)
