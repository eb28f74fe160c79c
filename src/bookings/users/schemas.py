"""User shapes at the edge."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from bookings.kit.schemas import ApiInput, ApiModel, omitted_when_none, refuse_null
from bookings.kit.time import TimeZoneName
from bookings.users.models import Role


class UserOut(ApiModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
                    "email": "ada@example.com",
                    "name": "Ada Lovelace",
                    "role": "user",
                    "createdAt": "2030-04-02T08:15:00Z",
                    "timeZone": "Europe/London",
                    "emailNotifications": True,
                }
            ]
        }
    )

    id: uuid.UUID
    email: str
    name: str
    role: Role
    created_at: datetime
    time_zone: str | None = Field(
        description="The zone mail shows times in; `null`: a provider's schedule zone, else UTC."
    )
    email_notifications: bool = Field(description="Whether mail about bookings is sent to this account.")


class UserPatch(ApiInput):
    """At least one field; ``timeZone: null`` goes back to the default zone."""

    model_config = ConfigDict(
        json_schema_extra={
            "minProperties": 1,
            "examples": [{"timeZone": "Europe/Berlin"}, {"emailNotifications": False}, {"name": "Ada King"}],
        }
    )

    name: str | None = Field(default=None, min_length=1, max_length=100, json_schema_extra=omitted_when_none)
    time_zone: TimeZoneName | None = None
    email_notifications: bool | None = Field(default=None, json_schema_extra=omitted_when_none)

    _not_null = field_validator("name", "email_notifications", mode="before")(refuse_null)

    @model_validator(mode="after")
    def _changes_something(self) -> UserPatch:
        if not self.model_fields_set:
            raise PydanticCustomError(
                "nothing_to_change", "Give at least one of `name`, `timeZone`, `emailNotifications`"
            )
        return self


class ProviderOut(ApiModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"id": "3f2b8c1e-6a4d-4b7e-9a51-0c2d7e8f9a10", "name": "Dr. Ada Byron"}]}
    )

    id: uuid.UUID
    name: str = Field(examples=["Dr. Ada Byron"])
