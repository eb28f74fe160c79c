"""Queries on schedules and overrides, and their translation into ``rules.Rules``."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bookings.availability.models import AvailabilityOverride, ProviderSchedule
from bookings.availability.rules import WEEKDAYS, Interval, Rules
from bookings.availability.schemas import minutes
from bookings.kit.pagination import PageRequest, keyset

# A provider's schedule and its overrides in one round trip, for the request path's pool on PostgreSQL ($1 the
# provider, $2 and $3 the first and last override dates kept).
RULES_SQL = """
SELECT s.time_zone, s.weekly_hours, s.slot_length, s.slot_interval, s.buffer_before, s.buffer_after, s.min_notice,
    s.max_horizon_days, s.max_per_day, s.version,
    (SELECT coalesce(json_agg(json_build_array(o.day, o.intervals)), '[]') FROM availability_overrides o
     WHERE o.provider_id = s.provider_id AND o.day BETWEEN $2 AND $3) AS overrides
FROM provider_schedules s WHERE s.provider_id = $1
"""


def rules_of_row(row: Mapping[str, Any]) -> Rules:
    """``RULES_SQL``'s row (JSON columns as text, as asyncpg gives them) to ``Rules``."""
    weekly = json.loads(row["weekly_hours"])
    return Rules(
        time_zone=row["time_zone"],
        weekly={n: intervals(weekly.get(day, [])) for n, day in enumerate(WEEKDAYS)},
        slot_length=row["slot_length"],
        slot_interval=row["slot_interval"],
        buffer_before=row["buffer_before"],
        buffer_after=row["buffer_after"],
        min_notice=row["min_notice"],
        max_horizon_days=row["max_horizon_days"],
        max_per_day=row["max_per_day"],
        version=row["version"],
        overrides={date.fromisoformat(day): intervals(spans) for day, spans in json.loads(row["overrides"])},
    )


def intervals(stored: list[list[str]]) -> list[Interval]:
    return [Interval(minutes(start), minutes(end)) for start, end in stored]


def rules_of(schedule: ProviderSchedule, overrides: list[AvailabilityOverride]) -> Rules:
    return Rules(
        time_zone=schedule.time_zone,
        weekly={n: intervals(schedule.weekly_hours.get(day, [])) for n, day in enumerate(WEEKDAYS)},
        slot_length=schedule.slot_length,
        slot_interval=schedule.slot_interval,
        buffer_before=schedule.buffer_before,
        buffer_after=schedule.buffer_after,
        min_notice=schedule.min_notice,
        max_horizon_days=schedule.max_horizon_days,
        max_per_day=schedule.max_per_day,
        version=schedule.version,
        overrides={o.day: intervals(o.intervals) for o in overrides},
    )


async def schedule(session: AsyncSession, provider_id: uuid.UUID, *, lock: bool = False) -> ProviderSchedule | None:
    query = select(ProviderSchedule).where(ProviderSchedule.provider_id == provider_id)
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def overrides_between(
    session: AsyncSession, provider_id: uuid.UUID, first: date, last: date
) -> list[AvailabilityOverride]:
    query = select(AvailabilityOverride).where(
        AvailabilityOverride.provider_id == provider_id,
        AvailabilityOverride.day >= first,
        AvailabilityOverride.day <= last,
    )
    return list(await session.scalars(query.order_by(AvailabilityOverride.day)))


async def override_page(
    session: AsyncSession, provider_id: uuid.UUID, first: date, last: date, paging: PageRequest
) -> tuple[list[AvailabilityOverride], int | None]:
    """A page by date, and the count when paging by number."""
    where = (
        AvailabilityOverride.provider_id == provider_id,
        AvailabilityOverride.day >= first,
        AvailabilityOverride.day <= last,
    )
    rows = list(
        await session.scalars(keyset(select(AvailabilityOverride).where(*where), paging, AvailabilityOverride.day))
    )
    total = None
    if paging.page is not None:
        total = await session.scalar(select(func.count()).select_from(AvailabilityOverride).where(*where)) or 0
    return rows, total


async def override(session: AsyncSession, provider_id: uuid.UUID, day: date) -> AvailabilityOverride | None:
    return await session.get(AvailabilityOverride, (provider_id, day))
