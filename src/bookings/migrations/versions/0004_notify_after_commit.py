"""Writers notify the relay and the workers after their commit: the NOTIFY triggers go.

A transaction that notifies holds PostgreSQL's database-wide notify lock from its pre-commit until its commit is
flushed, so the triggers made every booking commit wait for the one before it. ``kit.signals.Notifier`` now sends
the notifications from the application, once the commit has returned.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS events_notify ON events")
        op.execute("DROP FUNCTION IF EXISTS bookings_events_notify()")
        op.execute("DROP TRIGGER IF EXISTS jobs_notify ON jobs")
        op.execute("DROP FUNCTION IF EXISTS bookings_jobs_notify()")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION bookings_events_notify() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN PERFORM pg_notify('bookings_events', ''); RETURN NULL; END $$"
        )
        op.execute(
            "CREATE TRIGGER events_notify AFTER INSERT ON events "
            "FOR EACH STATEMENT EXECUTE FUNCTION bookings_events_notify()"
        )
        op.execute(
            "CREATE FUNCTION bookings_jobs_notify() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN PERFORM pg_notify('bookings_jobs', ''); RETURN NULL; END $$"
        )
        op.execute(
            "CREATE TRIGGER jobs_notify AFTER INSERT OR UPDATE OF state ON jobs "
            "FOR EACH ROW WHEN (NEW.state = 'pending') EXECUTE FUNCTION bookings_jobs_notify()"
        )
