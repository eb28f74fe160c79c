"""The event envelope, as sent over WebSockets (and, later, to webhooks)."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class EventType(enum.StrEnum):
    CREATED = "booking.created"
    UPDATED = "booking.updated"
    CANCELLED = "booking.cancelled"
    REMINDER = "booking.reminder"


class EventOut(BaseModel):
    """``{"id": 42, "event": "booking.created", "data": {booking}, "occurredAt": "..."}``.

    ``id`` increases by one for every event, in the order events committed; a client keeps the last one it saw
    and passes it as ``?since=`` when it reconnects.
    """

    model_config = ConfigDict(populate_by_name=True)

    id: int
    event: str
    data: dict[str, Any]
    occurred_at: datetime = Field(alias="occurredAt")


class StreamReady(BaseModel):
    """The first message on every socket: every event after ``lastId`` follows, in id order."""

    model_config = ConfigDict(populate_by_name=True)

    event: Literal["stream.ready"] = "stream.ready"
    last_id: int = Field(alias="lastId")


class Envelope(BaseModel):
    """An event as it travels on the bus: the public envelope plus its audience."""

    id: int
    event: str
    data: dict[str, Any]
    occurred_at: datetime
    user_id: uuid.UUID
    provider_id: uuid.UUID

    def public(self) -> dict[str, Any]:
        """The wire form of ``EventOut``."""
        occurred = self.occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
        return {"id": self.id, "event": self.event, "data": self.data, "occurredAt": occurred}
