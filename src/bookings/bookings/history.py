"""A booking's history: what each version changed, by whom, from which request (``booking_history``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bookings.auth.principal import Principal
from bookings.bookings.models import HistoryAction, HistoryEntry
from bookings.bookings.schemas import Actor, FieldChange, HistoryOut
from bookings.kit.pagination import Page, PageRequest, keyset, paged
from bookings.users.models import Role

_WIRE = TypeAdapter(Any)
TRACKED = ("start_time", "end_time", "notes", "status")  # the fields a change may alter, as the API names them
_CAMEL = {"start_time": "startTime", "end_time": "endTime", "notes": "notes", "status": "status"}


def wire(value: Any) -> Any:
    """A value as the API writes it (a time in UTC with ``Z``)."""
    return _WIRE.dump_python(value, mode="json")


def changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"startTime": {"from", "to"}, ...}`` for each tracked field whose value differs."""
    return {
        _CAMEL[name]: {"from": wire(before.get(name)), "to": wire(after.get(name))}
        for name in TRACKED
        if before.get(name) != after.get(name)
    }


@dataclass(frozen=True, slots=True)
class Revision:
    """One history entry before it is written."""

    version: int
    action: HistoryAction
    actor: Principal
    request_id: str | None
    changes: dict[str, dict[str, Any]]
    at: datetime
    reason: str | None = None

    def entry(self, booking_id: uuid.UUID) -> HistoryEntry:
        return HistoryEntry(
            booking_id=booking_id,
            version=self.version,
            action=self.action.value,
            occurred_at=self.at,
            actor_id=self.actor.user_id,
            actor_role=self.actor.role.value,
            request_id=self.request_id,
            changes=self.changes,
            reason=self.reason,
        )


def record(session: AsyncSession, booking_id: uuid.UUID, revision: Revision) -> None:
    session.add(revision.entry(booking_id))


def _out(row: HistoryEntry) -> HistoryOut:
    return HistoryOut(
        version=row.version,
        action=HistoryAction(row.action),
        occurred_at=row.occurred_at,
        actor=Actor(user_id=row.actor_id, role=None if row.actor_role is None else Role(row.actor_role)),
        request_id=row.request_id,
        changes={name: FieldChange.model_validate(change) for name, change in row.changes.items()},
        reason=row.reason,
    )


async def page(session: AsyncSession, booking_id: uuid.UUID, paging: PageRequest) -> Page[HistoryOut]:
    """Oldest version first (the count, when paging by number, is one entry per version since the history
    table exists)."""
    where = HistoryEntry.booking_id == booking_id
    rows = list(await session.scalars(keyset(select(HistoryEntry).where(where), paging, HistoryEntry.version)))
    total = None
    if paging.page is not None:
        total = await session.scalar(select(func.count()).select_from(HistoryEntry).where(where)) or 0
    return paged(rows, total, paging, _out, lambda row: (row.version,))
