"""The ``events`` outbox and the relay's bookmark.

A row is written in the same transaction as the booking change it describes (``seq`` orders insertion). Its
public ``id`` is assigned later by the single active relay, in the order the rows became visible: on PostgreSQL
sequence values are taken at insert but transactions commit in any order, so ``seq`` alone would let a reader
that remembers "the last id I saw" skip an event that committed late. ``id`` never has that gap.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String, Uuid
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from bookings.kit.orm import Base, UTCDateTime

# BIGINT on PostgreSQL; INTEGER on SQLite, where only an INTEGER PRIMARY KEY auto-increments.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_unassigned", "seq", postgresql_where="id IS NULL", sqlite_where="id IS NULL"),
        Index("ix_events_occurred_at", "occurred_at"),
        Index("ix_events_user_id_id", "user_id", "id"),
        Index("ix_events_provider_id_id", "provider_id", "id"),
    )

    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    id: Mapped[int | None] = mapped_column(BigInteger, unique=True, nullable=True)
    type: Mapped[str] = mapped_column(String(40))
    booking_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    provider_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON().with_variant(JSONB(), "postgresql"))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RelayState(Base):
    """How far the relay has published: events with ``id`` above this may not have reached the bus yet."""

    __tablename__ = "relay_state"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    published_through: Mapped[int] = mapped_column(BigInteger, default=0)
