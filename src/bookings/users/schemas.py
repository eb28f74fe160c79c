"""User shapes at the edge."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from bookings.kit.schemas import ApiModel
from bookings.users.models import Role


class UserOut(ApiModel):
    id: uuid.UUID
    email: str
    name: str
    role: Role
    created_at: datetime


class ProviderOut(ApiModel):
    id: uuid.UUID
    name: str = Field(examples=["Dr. Ada Byron"])
