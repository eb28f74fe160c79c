"""Webhook shapes at the edge."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AnyHttpUrl, ConfigDict, Field, UrlConstraints
from pydantic.config import JsonDict

from bookings.events.schemas import EventType
from bookings.kit.schemas import ApiInput, ApiModel


class WebhookIn(ApiInput):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "url": "https://hooks.example.com/bookings",
                    "eventTypes": ["booking.created", "booking.cancelled", "booking.reminder"],
                }
            ]
        }
    )

    url: Annotated[AnyHttpUrl, UrlConstraints(max_length=2000)] = Field(examples=["https://hooks.example.com/bookings"])
    event_types: list[EventType] = Field(min_length=1, max_length=10, examples=[["booking.created"]])


WEBHOOK_EXAMPLE: JsonDict = {
    "id": "9a7b3c2d-1e4f-4a5b-8c6d-7e8f9a0b1c2d",
    "url": "https://hooks.example.com/bookings",
    "eventTypes": ["booking.created", "booking.cancelled", "booking.reminder"],
    "createdAt": "2030-04-01T12:00:00Z",
}


class WebhookOut(ApiModel):
    model_config = ConfigDict(json_schema_extra={"examples": [WEBHOOK_EXAMPLE]})

    id: uuid.UUID
    url: str
    event_types: list[EventType]
    created_at: datetime


class WebhookWithSecret(WebhookOut):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{**WEBHOOK_EXAMPLE, "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}]}
    )

    secret: str = Field(description="`whsec_…`: shown only now. Verify signatures with it (Standard Webhooks).")
