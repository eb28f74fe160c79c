"""The API's resources as Pydantic models: snake_case attributes, camelCase aliases on the wire.

Written by hand (see the README for why) and held to the server's ``/openapi.json`` by a drift test in the
service's repository: each model below names the OpenAPI component it mirrors in ``__openapi__``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Generic, Literal, TypeVar
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

Role = Literal["user", "provider", "admin"]
RegisterRole = Literal["user", "provider"]
BookingStatus = Literal["confirmed", "cancelled"]
BookingWindow = Literal["upcoming", "past"]
EventType = Literal["booking.created", "booking.updated", "booking.cancelled", "booking.reminder"]

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


class CancelBody(ApiInput):
    __openapi__ = "CancelIn"

    reason: str | None = None


__all__ = [
    "Booking",
    "BookingStatus",
    "BookingWindow",
    "Event",
    "EventType",
    "FieldError",
    "Page",
    "Problem",
    "Provider",
    "Role",
    "TokenPair",
    "User",
]
