"""``provider_schedules`` and ``availability_overrides``: local wall-clock rules plus a zone, never UTC."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Integer, String, Uuid
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Mapped, mapped_column

from bookings.kit.orm import Base, UTCDateTime

JSONB = JSON().with_variant(postgresql.JSONB(), "postgresql")


class ProviderSchedule(Base):
    """One per provider that has set hours. ``version`` goes up with every change to it or to an override: the
    booking path checks the version it validated against, under the provider's lock."""

    __tablename__ = "provider_schedules"

    provider_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    time_zone: Mapped[str] = mapped_column(String(64))
    weekly_hours: Mapped[dict[str, Any]] = mapped_column(JSONB)  # {"monday": [["09:00", "12:00"], ...], ...}
    slot_length: Mapped[int] = mapped_column(Integer)
    slot_interval: Mapped[int] = mapped_column(Integer)
    buffer_before: Mapped[int] = mapped_column(Integer)
    buffer_after: Mapped[int] = mapped_column(Integer)
    min_notice: Mapped[int] = mapped_column(Integer)
    max_horizon_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_per_day: Mapped[int | None] = mapped_column(Integer, nullable=True)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AvailabilityOverride(Base):
    """A date whose hours differ from its weekday's (``[]``: closed)."""

    __tablename__ = "availability_overrides"

    provider_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("provider_schedules.provider_id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    intervals: Mapped[list[Any]] = mapped_column(JSONB)
    note: Mapped[str | None] = mapped_column(String(200), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
