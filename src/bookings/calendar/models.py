"""The ``calendar_feeds`` table: one feed per account, its secret stored as a hash (like refresh tokens)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from bookings.kit.orm import Base, UTCDateTime


class CalendarFeed(Base):
    __tablename__ = "calendar_feeds"

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
