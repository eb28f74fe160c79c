"""Provider availability: schedules, date overrides, and bookings' blocked ranges (the booking and its buffers).

The overlap rule moves from ``[start_time, end_time)`` to ``[blocked_start, blocked_end)``, backfilled with the
booking's own times, so that existing bookings keep exactly the protection they had. On PostgreSQL,
``bookings_day_count`` counts a provider's confirmed bookings of a day with a snapshot of its own: the booking
statement calls it after taking the provider's lock, and so sees a booking committed while it waited.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from bookings.kit.orm import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

JSONB = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_OVERLAP = """
    SELECT 1 FROM bookings b
    WHERE b.provider_id = NEW.provider_id AND b.status = 'confirmed' AND b.id != NEW.id
      AND b.{start} < NEW.{end} AND b.{end} > NEW.{start}
"""
# A PL/pgSQL function is never inlined into its caller, and each of its statements takes a new snapshot.
_DAY_COUNT = """
CREATE FUNCTION bookings_day_count(provider uuid, day_start timestamptz, day_end timestamptz) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RETURN (
        SELECT count(*) FROM bookings
        WHERE provider_id = provider AND status = 'confirmed' AND start_time >= day_start AND start_time < day_end
    );
END
$$
"""


def _sqlite_triggers(start: str, end: str) -> None:
    overlap = _OVERLAP.format(start=start, end=end)
    op.execute("DROP TRIGGER IF EXISTS bookings_no_overlap_insert")
    op.execute("DROP TRIGGER IF EXISTS bookings_no_overlap_update")
    op.execute(
        "CREATE TRIGGER bookings_no_overlap_insert BEFORE INSERT ON bookings "
        f"WHEN NEW.status = 'confirmed' AND EXISTS ({overlap}) "
        "BEGIN SELECT RAISE(ABORT, 'booking_overlap'); END"
    )
    op.execute(
        "CREATE TRIGGER bookings_no_overlap_update "
        f"BEFORE UPDATE OF provider_id, {start}, {end}, status ON bookings "
        f"WHEN NEW.status = 'confirmed' AND EXISTS ({overlap}) "
        "BEGIN SELECT RAISE(ABORT, 'booking_overlap'); END"
    )


def _postgres_constraint(start: str, end: str) -> None:
    op.execute("ALTER TABLE bookings DROP CONSTRAINT IF EXISTS bookings_no_overlap")
    op.execute(
        "ALTER TABLE bookings ADD CONSTRAINT bookings_no_overlap EXCLUDE USING gist "
        f"(provider_id WITH =, tstzrange({start}, {end}, '[)') WITH &&) WHERE (status = 'confirmed')"
    )


def upgrade() -> None:
    op.create_table(
        "provider_schedules",
        sa.Column("provider_id", sa.Uuid(), nullable=False),
        sa.Column("time_zone", sa.String(64), nullable=False),
        sa.Column("weekly_hours", JSONB, nullable=False),
        sa.Column("slot_length", sa.Integer(), nullable=False),
        sa.Column("slot_interval", sa.Integer(), nullable=False),
        sa.Column("buffer_before", sa.Integer(), nullable=False),
        sa.Column("buffer_after", sa.Integer(), nullable=False),
        sa.Column("min_notice", sa.Integer(), nullable=False),
        sa.Column("max_horizon_days", sa.Integer(), nullable=True),
        sa.Column("max_per_day", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["provider_id"], ["users.id"], name="fk_provider_schedules_provider_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("provider_id", name="pk_provider_schedules"),
    )
    op.create_table(
        "availability_overrides",
        sa.Column("provider_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("intervals", JSONB, nullable=False),
        sa.Column("note", sa.String(200), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["provider_schedules.provider_id"],
            name="fk_availability_overrides_provider_id_provider_schedules",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("provider_id", "day", name="pk_availability_overrides"),
    )
    # NOT NULL from the start (SQLite cannot add the constraint later without rebuilding the table, which would
    # cascade into booking_history): a placeholder default, at once replaced by each booking's own times.
    placeholder = sa.text("'2000-01-01 00:00:00'")
    with op.batch_alter_table("bookings", recreate="never") as batch:
        batch.add_column(sa.Column("blocked_start", UTCDateTime(), nullable=False, server_default=placeholder))
        batch.add_column(sa.Column("blocked_end", UTCDateTime(), nullable=False, server_default=placeholder))
    op.execute("UPDATE bookings SET blocked_start = start_time, blocked_end = end_time")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE bookings ALTER COLUMN blocked_start DROP DEFAULT")
        op.execute("ALTER TABLE bookings ALTER COLUMN blocked_end DROP DEFAULT")
        _postgres_constraint("blocked_start", "blocked_end")
        op.execute(_DAY_COUNT)
    else:
        _sqlite_triggers("blocked_start", "blocked_end")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS bookings_day_count(uuid, timestamptz, timestamptz)")
        _postgres_constraint("start_time", "end_time")
    else:
        _sqlite_triggers("start_time", "end_time")
    with op.batch_alter_table("bookings", recreate="never") as batch:
        batch.drop_column("blocked_end")
        batch.drop_column("blocked_start")
    op.drop_table("availability_overrides")
    op.drop_table("provider_schedules")
