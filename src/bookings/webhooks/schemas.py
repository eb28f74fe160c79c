"""Webhook shapes at the edge."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AnyHttpUrl, Field, UrlConstraints

from bookings.events.schemas import EventType
from bookings.kit.schemas import ApiInput, ApiModel


class WebhookIn(ApiInput):
    url: Annotated[AnyHttpUrl, UrlConstraints(max_length=2000)] = Field(examples=["https://hooks.example.com/bookings"])
    event_types: list[EventType] = Field(min_length=1, max_length=10, examples=[["booking.created"]])


class WebhookOut(ApiModel):
    id: uuid.UUID
    url: str
    event_types: list[EventType]
    created_at: datetime


class WebhookWithSecret(WebhookOut):
    secret: str = Field(description="`whsec_…`: shown only now. Verify signatures with it (Standard Webhooks).")
