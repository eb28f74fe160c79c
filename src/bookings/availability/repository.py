"""Queries on schedules and overrides, and their translation into ``rules.Rules``."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bookings.availability.models import AvailabilityOverride, ProviderSchedule
from bookings.availability.rules import WEEKDAYS, Interval, Rules
from bookings.availability.schemas import minutes
from bookings.kit.pagination import PageRequest, keyset


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
