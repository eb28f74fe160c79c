"""The ``bookings`` table.

Overlap is refused by the database itself (see the initial migration): on PostgreSQL an exclusion constraint
over ``tstzrange(start_time, end_time, '[)')`` for confirmed bookings, on SQLite a trigger that runs inside the
``BEGIN IMMEDIATE`` write transaction.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Enum, ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Mapped, mapped_column

from bookings.kit.orm import Base, UTCDateTime


class BookingStatus(enum.StrEnum):
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"


class Booking(Base):
    __tablename__ = "bookings"
    __table_args__ = (
        CheckConstraint("end_time > start_time", name="ends_after_start"),
        Index("ix_bookings_user_id_start_time", "user_id", "start_time"),
        Index("ix_bookings_provider_id_start_time", "provider_id", "start_time"),
        Index("ix_bookings_start_time", "start_time"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="RESTRICT"))
    provider_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="RESTRICT"))
    start_time: Mapped[datetime] = mapped_column(UTCDateTime)
    end_time: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[BookingStatus] = mapped_column(
        Enum(
            BookingStatus,
            name="booking_status",
            native_enum=False,
            length=16,
            values_callable=lambda e: [m.value for m in e],
        ),
        default=BookingStatus.CONFIRMED,
    )
    notes: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    cancel_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # The range no other confirmed booking of the provider may overlap: the booking and its provider's buffers
    # (the exclusion constraint and SQLite's trigger act on these). Without buffers, the booking's own times.
    blocked_start: Mapped[datetime] = mapped_column(UTCDateTime)
    blocked_end: Mapped[datetime] = mapped_column(UTCDateTime)
    # Incremented by every change: the ETag, which If-Match is compared with under the row lock.
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class HistoryAction(enum.StrEnum):
    CREATED = "created"
    RESCHEDULED = "rescheduled"
    UPDATED = "updated"  # the notes alone
    CANCELLED = "cancelled"


class HistoryEntry(Base):
    """One version of a booking: who made it, from which request, and what changed (``{"field": {"from", "to"}}``).

    Written in the change's own transaction and kept for the booking's life; the events outbox is pruned after
    its retention and is not the record.
    """

    __tablename__ = "booking_history"

    booking_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("bookings.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    action: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    actor_role: Mapped[str | None] = mapped_column(String(16), nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    changes: Mapped[dict[str, Any]] = mapped_column(JSON().with_variant(postgresql.JSONB(), "postgresql"))
    reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
