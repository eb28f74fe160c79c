"""Booking shapes at the edge. Bodies cannot carry ``userId`` or ``status``: unknown fields are refused."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime

from pydantic import ConfigDict, Field, field_validator, model_validator
from pydantic.config import JsonDict
from pydantic_core import PydanticCustomError

from bookings.bookings.models import BookingStatus, HistoryAction
from bookings.kit.schemas import ApiInput, ApiModel, omitted_when_none, refuse_null
from bookings.kit.time import Instant
from bookings.users.models import Role

_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def _sane_time(value: datetime | None) -> datetime | None:
    """Reject times that cannot be stored or compared (year 1, year 9999 with an offset)."""
    if value is None:
        return None
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None  # year 1 or 9999 pushed past the calendar by its offset
    if utc is None or not _EARLIEST <= utc < _LATEST:
        raise PydanticCustomError("time_out_of_range", "Time must be between the years 2000 and 2199")
    return utc


class BookingCreate(ApiInput):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "providerId": "3f2b8c1e-6a4d-4b7e-9a51-0c2d7e8f9a10",
                    "startTime": "2030-05-01T09:00:00Z",
                    "endTime": "2030-05-01T09:30:00Z",
                    "notes": "First visit",
                },
                {
                    "providerId": "3f2b8c1e-6a4d-4b7e-9a51-0c2d7e8f9a10",
                    "startTime": "2030-05-01T11:00:00+02:00",
                    "endTime": "2030-05-01T12:00:00+02:00",
                },
            ]
        }
    )

    provider_id: uuid.UUID = Field(examples=["3f2b8c1e-6a4d-4b7e-9a51-0c2d7e8f9a10"])
    start_time: Instant = Field(description="RFC 3339 with an offset.", examples=["2030-05-01T09:00:00Z"])
    end_time: Instant = Field(description="After `startTime`.", examples=["2030-05-01T09:30:00Z"])
    notes: str | None = Field(default=None, max_length=1000)

    _times = field_validator("start_time", "end_time")(_sane_time)


class BookingPatch(ApiInput):
    """At least one field; ``notes: null`` clears the notes, while the times can only be omitted, not nulled."""

    model_config = ConfigDict(
        json_schema_extra={
            "minProperties": 1,
            "examples": [
                {"startTime": "2030-05-01T10:00:00Z", "endTime": "2030-05-01T10:30:00Z"},
                {"notes": "Bring the X-ray"},
            ],
        }
    )

    start_time: Instant | None = Field(default=None, json_schema_extra=omitted_when_none)
    end_time: Instant | None = Field(default=None, json_schema_extra=omitted_when_none)
    notes: str | None = Field(default=None, max_length=1000)

    _times = field_validator("start_time", "end_time")(_sane_time)

    _not_null = field_validator("start_time", "end_time", mode="before")(refuse_null)

    @model_validator(mode="after")
    def _changes_something(self) -> BookingPatch:
        if not self.model_fields_set:
            raise PydanticCustomError("nothing_to_change", "Give at least one of `startTime`, `endTime`, `notes`")
        return self


class CancelIn(ApiInput):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "Feeling better"}, {}]})

    reason: str | None = Field(default=None, max_length=500, examples=["Feeling better"])


class BookingWindow(enum.StrEnum):
    UPCOMING = "upcoming"
    PAST = "past"


BOOKING_EXAMPLE: JsonDict = {
    "id": "1b4e28ba-2fa1-4d3b-a3f5-ef19b5a7633b",
    "userId": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
    "providerId": "3f2b8c1e-6a4d-4b7e-9a51-0c2d7e8f9a10",
    "startTime": "2030-05-01T09:00:00Z",
    "endTime": "2030-05-01T09:30:00Z",
    "status": "confirmed",
    "notes": "First visit",
    "cancelReason": None,
    "version": 1,
    "createdAt": "2030-04-02T08:20:00Z",
    "updatedAt": "2030-04-02T08:20:00Z",
}


class BookingOut(ApiModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                BOOKING_EXAMPLE,
                {
                    **BOOKING_EXAMPLE,
                    "status": "cancelled",
                    "cancelReason": "Feeling better",
                    "version": 2,
                    "updatedAt": "2030-04-20T17:05:00Z",
                },
            ]
        }
    )

    id: uuid.UUID
    user_id: uuid.UUID
    provider_id: uuid.UUID
    start_time: datetime
    end_time: datetime
    status: BookingStatus
    notes: str | None
    cancel_reason: str | None = None
    version: int = Field(description="Starts at 1, incremented by every change; the `ETag` is it in quotes.")
    created_at: datetime
    updated_at: datetime


class Actor(ApiModel):
    user_id: uuid.UUID | None = Field(description="Who made the change.")
    role: Role | None = Field(description="Their role when they made it.")


class FieldChange(ApiModel):
    from_: str | None = Field(alias="from", description="The value before (`null` for a new booking's fields).")
    to: str | None


class HistoryOut(ApiModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "version": 3,
                    "action": "cancelled",
                    "occurredAt": "2030-04-20T17:05:00Z",
                    "actor": {"userId": "7c9e6679-7425-40de-944b-e07fc1f90ae7", "role": "user"},
                    "requestId": "5f0c8f0e6a4b4d0f9a0f4a8c6b1e2d3f",
                    "changes": {"status": {"from": "confirmed", "to": "cancelled"}},
                    "reason": "Feeling better",
                }
            ]
        }
    )

    version: int
    action: HistoryAction
    occurred_at: datetime
    actor: Actor
    request_id: str | None = Field(description="The `X-Request-ID` of the request that made the change.")
    changes: dict[str, FieldChange] = Field(description="Each field the change altered, by its API name.")
    reason: str | None = Field(description="The cancellation's reason.")
