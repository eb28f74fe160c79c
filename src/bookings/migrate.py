"""Schema migrations, applied with Alembic from inside the package (no ``alembic.ini`` to carry around)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from bookings.config import Settings


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", "bookings:migrations")
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(settings: Settings, revision: str = "head") -> None:
    command.upgrade(alembic_config(settings.session_database_url), revision)


def downgrade(settings: Settings, revision: str) -> None:
    command.downgrade(alembic_config(settings.session_database_url), revision)
