"""Availability shapes at the edge: a weekly schedule, date overrides, and the slots a search offers."""

from __future__ import annotations

import itertools
import re
import uuid
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BeforeValidator, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from bookings.availability.rules import DAY_MINUTES, WEEKDAYS, Interval
from bookings.kit.schemas import ApiInput, ApiModel
from bookings.kit.time import TimeZoneName

MAX_INTERVALS_A_DAY = 12
_HHMM = re.compile(r"(?:[01]\d|2[0-3]):[0-5]\d|24:00")
_DATE = re.compile(r"\d{4}-\d\d-\d\d")


def _strict_date(value: object) -> object:
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise PydanticCustomError("date_format", "Input should be a date as YYYY-MM-DD")
    return value


StrictDate = Annotated[date, BeforeValidator(_strict_date)]


def minutes(hhmm: str) -> int:
    return int(hhmm[:2]) * 60 + int(hhmm[3:])


def hhmm(value: int) -> str:
    return f"{value // 60:02d}:{value % 60:02d}"


class IntervalIn(ApiInput):
    """``[start, end)`` in local wall-clock time, ``HH:MM`` 24-hour; ``24:00`` only as an end."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"start": "09:00", "end": "12:00"}]})

    start: str = Field(pattern=_HHMM.pattern, examples=["09:00"])
    end: str = Field(pattern=_HHMM.pattern, examples=["12:00"])

    @model_validator(mode="after")
    def _ordered(self) -> IntervalIn:
        if self.start == "24:00":
            raise PydanticCustomError("start_is_midnight_end", "24:00 can only end an interval")
        if minutes(self.end) <= minutes(self.start):
            raise PydanticCustomError(
                "end_before_start", "An interval ends after it starts, on the same day (a night shift is two)"
            )
        return self

    def interval(self) -> Interval:
        return Interval(minutes(self.start), minutes(self.end))


def _day_of_intervals(intervals: list[IntervalIn]) -> list[IntervalIn]:
    if len(intervals) > MAX_INTERVALS_A_DAY:
        raise PydanticCustomError("too_many_intervals", f"At most {MAX_INTERVALS_A_DAY} intervals a day")
    ordered = sorted(intervals, key=lambda i: minutes(i.start))
    for before, after in itertools.pairwise(ordered):
        if minutes(after.start) < minutes(before.end):
            raise PydanticCustomError("intervals_overlap", "The intervals of a day must not overlap")
    return ordered


DayIntervals = Annotated[list[IntervalIn], Field(max_length=MAX_INTERVALS_A_DAY)]


class WeeklyHours(ApiInput):
    """Each weekday's intervals; a day left out is ``[]`` (closed)."""

    monday: DayIntervals = Field(default_factory=list)
    tuesday: DayIntervals = Field(default_factory=list)
    wednesday: DayIntervals = Field(default_factory=list)
    thursday: DayIntervals = Field(default_factory=list)
    friday: DayIntervals = Field(default_factory=list)
    saturday: DayIntervals = Field(default_factory=list)
    sunday: DayIntervals = Field(default_factory=list)

    _days = field_validator(*WEEKDAYS)(_day_of_intervals)

    def intervals(self) -> dict[int, list[Interval]]:
        return {n: [i.interval() for i in getattr(self, day)] for n, day in enumerate(WEEKDAYS)}


SCHEDULE_EXAMPLE: dict[str, Any] = {
    "timeZone": "Europe/Berlin",
    "weeklyHours": {
        "monday": [{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "17:00"}],
        "sunday": [],
    },
    "slotLengthMinutes": 60,
    "slotIntervalMinutes": 60,
    "bufferBeforeMinutes": 0,
    "bufferAfterMinutes": 15,
    "minNoticeMinutes": 120,
    "maxHorizonDays": 90,
    "maxBookingsPerDay": 6,
}


class ScheduleIn(ApiInput):
    model_config = ConfigDict(json_schema_extra={"examples": [SCHEDULE_EXAMPLE]})

    time_zone: TimeZoneName
    weekly_hours: WeeklyHours
    slot_length_minutes: int = Field(default=30, ge=5, le=DAY_MINUTES)
    slot_interval_minutes: int | None = Field(default=None, ge=5, le=DAY_MINUTES, description="Default: the length.")
    buffer_before_minutes: int = Field(default=0, ge=0, le=720)
    buffer_after_minutes: int = Field(default=0, ge=0, le=720)
    min_notice_minutes: int = Field(default=0, ge=0, le=525_600)
    max_horizon_days: int | None = Field(default=None, ge=1, le=730, description="`null`: no horizon.")
    max_bookings_per_day: int | None = Field(default=None, ge=1, le=1000, description="`null`: no limit.")


class IntervalOut(ApiModel):
    start: str
    end: str


class WeeklyHoursOut(ApiModel):
    monday: list[IntervalOut]
    tuesday: list[IntervalOut]
    wednesday: list[IntervalOut]
    thursday: list[IntervalOut]
    friday: list[IntervalOut]
    saturday: list[IntervalOut]
    sunday: list[IntervalOut]


class ScheduleOut(ApiModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **SCHEDULE_EXAMPLE,
                    "weeklyHours": {day: SCHEDULE_EXAMPLE["weeklyHours"].get(day, []) for day in WEEKDAYS},
                    "providerId": "3f2b8c1e-6a4d-4b7e-9a51-0c2d7e8f9a10",
                    "version": 1,
                    "updatedAt": "2030-04-02T08:20:00Z",
                }
            ]
        }
    )

    provider_id: uuid.UUID
    time_zone: str
    weekly_hours: WeeklyHoursOut
    slot_length_minutes: int
    slot_interval_minutes: int
    buffer_before_minutes: int
    buffer_after_minutes: int
    min_notice_minutes: int
    max_horizon_days: int | None
    max_bookings_per_day: int | None
    version: int
    updated_at: datetime


class OverrideIn(ApiInput):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"intervals": [{"start": "09:00", "end": "12:00"}], "note": "half day"}]}
    )

    intervals: DayIntervals = Field(description="`[]` closes the day.")
    note: str | None = Field(default=None, max_length=200)

    _day = field_validator("intervals")(_day_of_intervals)


class OverrideOut(ApiModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "date": "2030-05-01",
                    "intervals": [{"start": "09:00", "end": "12:00"}],
                    "note": "half day",
                    "updatedAt": "2030-04-02T08:20:00Z",
                }
            ]
        }
    )

    date: date
    intervals: list[IntervalOut]
    note: str | None
    updated_at: datetime


class Slot(ApiModel):
    start_time: datetime
    end_time: datetime


class SlotsOut(ApiModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "providerId": "3f2b8c1e-6a4d-4b7e-9a51-0c2d7e8f9a10",
                    "timeZone": "Europe/Berlin",
                    "providerTimeZone": "Europe/Berlin",
                    "from": "2030-05-01",
                    "to": "2030-05-01",
                    "slotLengthMinutes": 60,
                    "slots": [
                        {"startTime": "2030-05-01T07:00:00Z", "endTime": "2030-05-01T08:00:00Z"},
                        {"startTime": "2030-05-01T08:00:00Z", "endTime": "2030-05-01T09:00:00Z"},
                    ],
                }
            ]
        }
    )

    provider_id: uuid.UUID
    time_zone: str = Field(description="The zone the `from`/`to` dates were read in.")
    provider_time_zone: str
    from_: str = Field(alias="from")
    to: str
    slot_length_minutes: int
    slots: list[Slot]
