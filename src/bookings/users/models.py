"""The ``users`` table."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, Enum, Index, String, Uuid, true
from sqlalchemy.orm import Mapped, mapped_column

from bookings.identity import Role
from bookings.kit.orm import Base, UTCDateTime

__all__ = ["Role", "User"]


class User(Base):
    __tablename__ = "users"
    __table_args__ = (Index("ix_users_role_name", "role", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[Role] = mapped_column(
        Enum(
            Role,
            name="user_role",
            native_enum=False,
            length=16,
            values_callable=lambda e: [m.value for m in e],
        )
    )
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The IANA zone mail shows times in; None: a provider's schedule zone, else UTC.
    time_zone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    email_notifications: Mapped[bool] = mapped_column(Boolean, server_default=true(), default=True)
