"""Writing events: one row per booking change, in the change's own transaction."""

from __future__ import annotations

import os
import signal
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bookings.db import after_commit
from bookings.events.coordination import Coordinator
from bookings.events.models import Event
from bookings.events.schemas import EventType


def _kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class Outbox:
    def __init__(self, coordinator: Coordinator, *, fault_kill_after_commit: bool = False) -> None:
        self._coordinator = coordinator
        self._fault_kill_after_commit = fault_kill_after_commit

    def record(
        self,
        session: AsyncSession,
        event: EventType,
        booking: dict[str, Any],
        *,
        actor_id: uuid.UUID | None,
        now: datetime,
    ) -> None:
        """Stage an event for ``booking`` (its JSON snapshot). It exists only if the transaction commits."""
        session.add(
            Event(
                type=event.value,
                booking_id=uuid.UUID(booking["id"]),
                user_id=uuid.UUID(booking["userId"]),
                provider_id=uuid.UUID(booking["providerId"]),
                actor_id=actor_id,
                data=booking,
                occurred_at=now,
            )
        )
        after_commit(session, self.committed)

    def committed(self) -> None:
        """Called once a transaction that recorded events has committed (writers with SQL of their own call it)."""
        self._coordinator.poke()
        if self._fault_kill_after_commit:  # test-only: die between the commit and the publication
            _kill_self()
