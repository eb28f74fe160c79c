"""Who sees a booking, and everything that follows it (its events): one rule, in a SQL form and a Python form.

Admins see every booking, providers the bookings assigned to them, users their own. Both tables it is applied
to (``bookings`` and ``events``) carry the booking's ``user_id`` and ``provider_id``; ``Audience.where`` takes
their columns, ``Audience.admits`` a row's values. ``bookings.policy`` builds its proof types from this, the
events' replay and the live hub apply it directly: none of them writes the rule again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, true

from bookings.auth.principal import Principal
from bookings.users.models import Role

Owner = Literal["user_id", "provider_id"]


@dataclass(frozen=True, slots=True)
class Audience:
    owner: Owner | None  # None: everything (an admin)
    owner_id: uuid.UUID

    def where(self, user_id: Any, provider_id: Any) -> ColumnElement[bool]:
        """The rule over a table's ``user_id`` and ``provider_id`` columns."""
        if self.owner is None:
            return true()
        column: ColumnElement[bool] = (user_id if self.owner == "user_id" else provider_id) == self.owner_id
        return column

    def admits(self, user_id: uuid.UUID, provider_id: uuid.UUID) -> bool:
        if self.owner is None:
            return True
        return self.owner_id == (user_id if self.owner == "user_id" else provider_id)


def audience(principal: Principal) -> Audience:
    owner: Owner | None
    match principal.role:
        case Role.ADMIN:
            owner = None
        case Role.PROVIDER:
            owner = "provider_id"
        case Role.USER:
            owner = "user_id"
    return Audience(owner, principal.user_id)
