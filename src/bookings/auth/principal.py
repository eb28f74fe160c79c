"""The authenticated caller of a request."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from bookings.users.models import Role


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: uuid.UUID
    role: Role
