"""The API's resources as Pydantic models: snake_case attributes, camelCase aliases on the wire.

Written by hand (see the README for why) and held to the server's ``/openapi.json`` by a drift test in the
service's repository: each model below names the OpenAPI component it mirrors in ``__openapi__``.
"""

from __future__ import annotations

from datetime import date
from typing import Any, ClassVar, Generic, Literal, TypeVar
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

Role = Literal["user", "provider", "admin"]
RegisterRole = Literal["user", "provider"]
BookingStatus = Literal["confirmed", "cancelled"]
BookingWindow = Literal["upcoming", "past"]
EventType = Literal["booking.created", "booking.updated", "booking.cancelled", "booking.reminder"]
Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKDAYS: tuple[Weekday, ...] = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

T = TypeVar("T")


class ApiModel(BaseModel):
    """A response body. Unknown fields are ignored, so an older client keeps working against a newer server."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True, extra="ignore")

    __openapi__: ClassVar[str | None] = None


class User(ApiModel):
    __openapi__ = "UserOut"

    id: UUID
    email: str
    name: str
    role: Role
    created_at: AwareDatetime
    time_zone: str | None
    email_notifications: bool


class CalendarFeed(ApiModel):
    __openapi__ = "CalendarFeedOut"

    url: str


class Provider(ApiModel):
    __openapi__ = "ProviderOut"

    id: UUID
    name: str


class Booking(ApiModel):
    __openapi__ = "BookingOut"

    id: UUID
    user_id: UUID
    provider_id: UUID
    start_time: AwareDatetime
    end_time: AwareDatetime
    status: BookingStatus
    notes: str | None
    cancel_reason: str | None = None
    version: int
    """Incremented by every change; the booking's ``ETag`` is this number in quotes."""
    created_at: AwareDatetime
    updated_at: AwareDatetime


HistoryAction = Literal["created", "rescheduled", "updated", "cancelled"]


class Actor(ApiModel):
    __openapi__ = "Actor"

    user_id: UUID | None
    role: Role | None


class FieldChange(ApiModel):
    __openapi__ = "FieldChange"

    from_: str | None = Field(alias="from")
    to: str | None


class HistoryEntry(ApiModel):
    """One version of a booking: what changed (``changes``, by the API's field names), by whom, from which
    request (its ``X-Request-ID``)."""

    __openapi__ = "HistoryOut"

    version: int
    action: HistoryAction
    occurred_at: AwareDatetime
    actor: Actor
    request_id: str | None
    changes: dict[str, FieldChange]
    reason: str | None


# Availability: a provider's weekly hours, the dates with hours of their own, and the slots a search offers.
# ``Interval`` and ``WeeklyHours`` are both read (in a ``Schedule``, an ``Override``) and sent (in a
# ``ScheduleBody``, ``availability.set_override``), so each mirrors two components: its ``...Out`` and its ``...In``.


class Interval(ApiModel):
    """``[start, end)`` in the provider's local wall-clock time, ``"HH:MM"`` 24-hour; ``"24:00"`` only as an end.

    A night shift is two intervals: ``22:00-24:00`` on one day and ``00:00-06:00`` on the next.
    """

    __openapi__ = "IntervalOut"  # and "IntervalIn"

    start: str
    end: str


class WeeklyHours(ApiModel):
    """Each weekday's intervals, ascending; a day left out is ``[]`` (closed)."""

    __openapi__ = "WeeklyHoursOut"  # and "WeeklyHours"

    monday: list[Interval] = Field(default_factory=list)
    tuesday: list[Interval] = Field(default_factory=list)
    wednesday: list[Interval] = Field(default_factory=list)
    thursday: list[Interval] = Field(default_factory=list)
    friday: list[Interval] = Field(default_factory=list)
    saturday: list[Interval] = Field(default_factory=list)
    sunday: list[Interval] = Field(default_factory=list)

    def day(self, weekday: Weekday) -> list[Interval]:
        """The intervals of ``weekday`` (``"monday"`` ... ``"sunday"``)."""
        intervals: list[Interval] = getattr(self, weekday)
        return intervals


class Schedule(ApiModel):
    """A provider's availability: weekly hours in ``time_zone`` (an IANA name) and the rules every slot follows.

    Lengths, steps, buffers and notice are minutes; ``None`` for the horizon or the daily limit means none.
    ``version`` is incremented by every change (overrides included); the schedule's ``ETag`` is it in quotes.
    """

    __openapi__ = "ScheduleOut"

    provider_id: UUID
    time_zone: str
    weekly_hours: WeeklyHours
    slot_length_minutes: int
    slot_interval_minutes: int
    buffer_before_minutes: int
    buffer_after_minutes: int
    min_notice_minutes: int
    max_horizon_days: int | None
    max_bookings_per_day: int | None
    version: int
    updated_at: AwareDatetime

    def to_body(self) -> ScheduleBody:
        """The same rules as a body for ``availability.set`` (e.g. to change one field, or to copy them)."""
        return ScheduleBody(
            time_zone=self.time_zone,
            weekly_hours=self.weekly_hours,
            slot_length_minutes=self.slot_length_minutes,
            slot_interval_minutes=self.slot_interval_minutes,
            buffer_before_minutes=self.buffer_before_minutes,
            buffer_after_minutes=self.buffer_after_minutes,
            min_notice_minutes=self.min_notice_minutes,
            max_horizon_days=self.max_horizon_days,
            max_bookings_per_day=self.max_bookings_per_day,
        )


class Override(ApiModel):
    """A date (in the provider's zone) with hours of its own instead of its weekday's; ``[]``: closed that day."""

    __openapi__ = "OverrideOut"

    date: date
    intervals: list[Interval]
    note: str | None
    updated_at: AwareDatetime


class Slot(ApiModel):
    """An open slot, in UTC: book it with ``bookings.create(start_time=slot.start_time, end_time=slot.end_time)``."""

    __openapi__ = "Slot"

    start_time: AwareDatetime
    end_time: AwareDatetime


class Slots(ApiModel):
    """A slot search's answer: the open ``slots`` (UTC, ascending) between ``from_`` and ``to`` as the search read
    them (dates in ``time_zone``, or instants), and the provider's own zone and slot length."""

    __openapi__ = "SlotsOut"

    provider_id: UUID
    time_zone: str
    provider_time_zone: str
    from_: str = Field(alias="from")
    to: str
    slot_length_minutes: int
    slots: list[Slot]


class TokenPair(ApiModel):
    __openapi__ = "TokenPair"

    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    """Seconds until the access token expires."""

    def __repr__(self) -> str:  # never print tokens by accident
        return f"TokenPair(token_type={self.token_type!r}, expires_in={self.expires_in!r})"

    __str__ = __repr__


class Page(ApiModel, Generic[T]):
    """One page of a list: ``items``, the 1-based ``page``, the ``limit`` asked for, the ``total`` count, and
    ``next_cursor`` to walk on by keyset (``page`` and ``total`` are ``None`` on a page read by cursor)."""

    items: list[T]
    page: int | None
    limit: int
    total: int | None
    next_cursor: str | None
    has_more: bool

    @property
    def has_next(self) -> bool:
        return self.has_more


class FieldError(ApiModel):
    __openapi__ = "FieldError"

    field: str
    """Dotted path of the offending field, e.g. ``startTime`` or ``query.limit``."""
    message: str
    type: str
    """A stable machine-readable code, e.g. ``missing`` or ``start_in_past``."""


class Problem(ApiModel):
    """An RFC 9457 problem document, as every error response carries."""

    __openapi__ = "Problem"

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = None


class Event(ApiModel):
    """A message of the ``/ws`` stream. ``id`` increases in commit order; ``data`` is the booking after the change."""

    id: int
    event: EventType
    data: Booking
    occurred_at: AwareDatetime


class StreamReady(ApiModel):
    """The ``/ws`` stream's first message: every event after ``last_id`` follows. Handled by the event stream."""

    event: Literal["stream.ready"]
    last_id: int


# Request bodies. They are the SDK's own (the methods take keyword arguments), kept here so that the drift test
# holds them to the server's input schemas too.


class ApiInput(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    __openapi__: ClassVar[str | None] = None


class RegisterBody(ApiInput):
    __openapi__ = "RegisterIn"

    email: str
    password: str
    name: str
    role: RegisterRole = "user"


class LoginBody(ApiInput):
    __openapi__ = "LoginIn"

    email: str
    password: str


class RefreshBody(ApiInput):
    __openapi__ = "RefreshIn"

    refresh_token: str


class BookingCreateBody(ApiInput):
    __openapi__ = "BookingCreate"

    provider_id: UUID
    start_time: AwareDatetime
    end_time: AwareDatetime
    notes: str | None = None


class ScheduleBody(ApiInput):
    """A provider's whole schedule, for ``availability.set`` (a full replace). Only ``time_zone`` (an IANA name such
    as ``"Europe/Berlin"``, not an offset) and ``weekly_hours`` are required; a field left out takes the service's
    default: 30-minute slots, a step of the slot length, no buffers, no notice, no horizon, no daily limit."""

    __openapi__ = "ScheduleIn"

    time_zone: str
    weekly_hours: WeeklyHours
    slot_length_minutes: int = 30
    slot_interval_minutes: int | None = None
    """Minutes from one slot's start to the next one's; ``None``: the slot length."""
    buffer_before_minutes: int = 0
    buffer_after_minutes: int = 0
    min_notice_minutes: int = 0
    max_horizon_days: int | None = None
    max_bookings_per_day: int | None = None


class OverrideBody(ApiInput):
    __openapi__ = "OverrideIn"

    intervals: list[Interval]
    note: str | None = None


def _omit_not_null(schema: dict[str, Any]) -> None:
    """A field that may be left out but not sent as null (the SDK sends only the fields that were set)."""
    if variants := schema.pop("anyOf", None):
        schema.update(next(v for v in variants if v.get("type") != "null"))
    schema.pop("default", None)


class BookingPatchBody(ApiInput):
    """``notes: null`` clears the notes; the times may be omitted but not nulled."""

    __openapi__ = "BookingPatch"

    start_time: AwareDatetime | None = Field(default=None, json_schema_extra=_omit_not_null)
    end_time: AwareDatetime | None = Field(default=None, json_schema_extra=_omit_not_null)
    notes: str | None = None


class UserPatchBody(ApiInput):
    """Only the fields set are sent; ``time_zone=None`` goes back to the default zone."""

    __openapi__ = "UserPatch"

    name: str | None = Field(default=None, json_schema_extra=_omit_not_null)
    time_zone: str | None = None
    email_notifications: bool | None = Field(default=None, json_schema_extra=_omit_not_null)


class CancelBody(ApiInput):
    __openapi__ = "CancelIn"

    reason: str | None = None


__all__ = [
    "Booking",
    "BookingStatus",
    "BookingWindow",
    "CalendarFeed",
    "Event",
    "EventType",
    "FieldError",
    "Interval",
    "Override",
    "Page",
    "Problem",
    "Provider",
    "Role",
    "Schedule",
    "ScheduleBody",
    "Slot",
    "Slots",
    "TokenPair",
    "User",
    "Weekday",
    "WeeklyHours",
]
