"""Users, refresh tokens and bookings, with overlap refused by the database on both backends.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bookings.kit.orm import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_OVERLAP = """
    SELECT 1 FROM bookings b
    WHERE b.provider_id = NEW.provider_id AND b.status = 'confirmed' AND b.id != NEW.id
      AND b.start_time < NEW.end_time AND b.end_time > NEW.start_time
"""


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("email", name="uq_users_email"),
        sa.CheckConstraint("role IN ('user', 'provider', 'admin')", name="ck_users_role"),
    )
    op.create_index("ix_users_role_name", "users", ["role", "name"])

    op.create_table(
        "refresh_tokens",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("family_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_refresh_tokens"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_refresh_tokens_user_id_users", ondelete="CASCADE"),
        sa.UniqueConstraint("token_hash", name="uq_refresh_tokens_token_hash"),
    )
    op.create_index("ix_refresh_tokens_user_id", "refresh_tokens", ["user_id"])
    op.create_index("ix_refresh_tokens_family_id", "refresh_tokens", ["family_id"])

    op.create_table(
        "bookings",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("provider_id", sa.Uuid(), nullable=False),
        sa.Column("start_time", UTCDateTime(), nullable=False),
        sa.Column("end_time", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("notes", sa.String(1000), nullable=True),
        sa.Column("cancel_reason", sa.String(500), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_bookings"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_bookings_user_id_users", ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(
            ["provider_id"], ["users.id"], name="fk_bookings_provider_id_users", ondelete="RESTRICT"
        ),
        sa.CheckConstraint("end_time > start_time", name="ck_bookings_ends_after_start"),
        sa.CheckConstraint("status IN ('confirmed', 'cancelled')", name="ck_bookings_status"),
    )
    op.create_index("ix_bookings_user_id_start_time", "bookings", ["user_id", "start_time"])
    op.create_index("ix_bookings_provider_id_start_time", "bookings", ["provider_id", "start_time"])
    op.create_index("ix_bookings_start_time", "bookings", ["start_time"])

    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
        op.execute(
            "ALTER TABLE bookings ADD CONSTRAINT bookings_no_overlap EXCLUDE USING gist "
            "(provider_id WITH =, tstzrange(start_time, end_time, '[)') WITH &&) "
            "WHERE (status = 'confirmed')"
        )
    else:
        op.execute(
            "CREATE TRIGGER bookings_no_overlap_insert BEFORE INSERT ON bookings "
            f"WHEN NEW.status = 'confirmed' AND EXISTS ({_OVERLAP}) "
            "BEGIN SELECT RAISE(ABORT, 'booking_overlap'); END"
        )
        op.execute(
            "CREATE TRIGGER bookings_no_overlap_update "
            "BEFORE UPDATE OF provider_id, start_time, end_time, status ON bookings "
            f"WHEN NEW.status = 'confirmed' AND EXISTS ({_OVERLAP}) "
            "BEGIN SELECT RAISE(ABORT, 'booking_overlap'); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS bookings_no_overlap_update")
        op.execute("DROP TRIGGER IF EXISTS bookings_no_overlap_insert")
    op.drop_table("bookings")
    op.drop_table("refresh_tokens")
    op.drop_table("users")
