"""User shapes at the edge."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import ConfigDict, Field

from bookings.kit.schemas import ApiModel
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
                }
            ]
        }
    )

    id: uuid.UUID
    email: str
    name: str
    role: Role
    created_at: datetime


class ProviderOut(ApiModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"id": "3f2b8c1e-6a4d-4b7e-9a51-0c2d7e8f9a10", "name": "Dr. Ada Byron"}]}
    )

    id: uuid.UUID
    name: str = Field(examples=["Dr. Ada Byron"])
