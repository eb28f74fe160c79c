"""Settings, read once from the environment (``BOOKINGS_*``) and passed down explicitly."""

from __future__ import annotations

import enum
import secrets
from pathlib import Path

from limits import parse_many
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SQLITE_URL = "sqlite:///bookings.db"


class Mode(enum.StrEnum):
    """Embedded: one process on a SQLite file. Distributed: PostgreSQL (and Redis), many processes."""

    EMBEDDED = "embedded"
    DISTRIBUTED = "distributed"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BOOKINGS_", env_file=".env", extra="ignore")

    database_url: str = DEFAULT_SQLITE_URL
    # PostgreSQL itself, when ``database_url`` goes through a transaction pooler (PgBouncer in transaction mode).
    # Then LISTEN, the relay's advisory lock and migrations use this URL (they need a session of their own), and
    # nothing is prepared on ``database_url`` (a pooled server connection is not the one a statement was prepared
    # on). Unset: everything uses ``database_url``.
    database_direct_url: str | None = None
    redis_url: str | None = None
    # Namespace of this deployment's keys in Redis (one Redis may serve several deployments).
    redis_prefix: str = Field(default="bookings", pattern=r"^[A-Za-z0-9_.:-]{1,64}$")

    # Tokens. "kid:secret" pairs separated by commas; the first signs, every one verifies.
    # Empty in embedded mode: a ring is generated once and kept beside the SQLite file.
    jwt_keys: str = ""
    jwt_issuer: str = "bookings"
    access_token_ttl_seconds: int = Field(default=900, ge=30)
    refresh_token_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=60)

    # argon2id cost. The defaults follow RFC 9106's second recommended option.
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_cost_kib: int = Field(default=65536, ge=8)
    argon2_parallelism: int = Field(default=4, ge=1)

    # Changes to a booking without ``If-Match`` are refused (428) instead of the last writer winning.
    require_if_match: bool = False
    # How long the outcome of a request with an ``Idempotency-Key`` is kept to be replayed (then pruned).
    idempotency_retention_hours: int = Field(default=24, ge=1)

    max_booking_minutes: int = Field(default=24 * 60, ge=1)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    db_pool_size: int = Field(default=20, ge=1)
    # Bookings and booking pages kept in each process's memory, refreshed from the committed event stream; 0: none.
    cache_entries: int = Field(default=50_000, ge=0)
    cache_ttl_seconds: float = Field(default=60.0, gt=0)

    # Rate limits, as "N/period" items separated by ";" (e.g. "10/minute;100/hour"); empty: no limit.
    rate_limit_login: str = "10/minute"  # per client address and email
    rate_limit_login_per_address: str = "100/minute"  # per client address, whatever the email
    rate_limit_register: str = "20/hour"  # per client address
    rate_limit_bookings: str = "60/minute"  # booking creations per user

    # Real-time events.
    relay_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    event_retention_days: int = Field(default=7, ge=7)
    ws_queue_size: int = Field(default=1000, ge=1)
    # WebSocket pings keep idle connections open through proxies, and find dead peers.
    ws_ping_seconds: float = Field(default=20.0, gt=0)
    # Reminders and background jobs.
    reminder_lead_seconds: int = Field(default=600, ge=0)
    worker_concurrency: int = Field(default=16, ge=1, le=1000)
    job_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    job_lease_seconds: float = Field(default=60.0, gt=0)
    job_backoff_seconds: float = Field(default=5.0, gt=0)
    job_backoff_cap_seconds: float = Field(default=3600.0, gt=0)

    # Webhooks.
    webhook_allow_private: bool = False
    webhook_max_attempts: int = Field(default=8, ge=1, le=50)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)

    # Mail (confirmations, changes, cancellations and reminders, with calendar invites). Unset: no mail at all.
    # ``smtp://user:password@host:587`` (STARTTLS, required unless ``?starttls=false``), ``smtps://...:465`` (TLS
    # from the first byte).
    smtp_url: str | None = None
    mail_from: str = "Bookings <bookings@localhost>"
    mail_max_attempts: int = Field(default=8, ge=1, le=50)
    mail_timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    # Where the links in mail (unsubscribe) and calendar feed URLs point: this service as its users reach it.
    # Unset: a feed URL is made from the request it was asked for with, and mail links point at the default
    # address of ``bookings serve``.
    public_url: str | None = None
    # Calendar feed reads, per feed (calendar apps poll every few minutes).
    rate_limit_calendar_feed: str = "60/minute"

    # Test-only fault injection: the process kills itself right after committing a booking change, before the
    # relay can publish its event. Never set this outside the crash tests.
    fault_kill_after_commit: bool = False

    log_level: str = "INFO"
    log_json: bool = True

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql", "postgres")):
            raise ValueError("database_url must be a sqlite:// or postgresql:// URL")
        return value

    @field_validator("database_direct_url")
    @classmethod
    def _postgres_only(cls, value: str | None) -> str | None:
        if not value:
            return None  # empty counts as unset
        if not value.startswith(("postgresql", "postgres")):
            raise ValueError("database_direct_url must be a postgresql:// URL")
        return value

    @field_validator("smtp_url")
    @classmethod
    def _smtp(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("smtp://", "smtps://")):
            raise ValueError("smtp_url must be an smtp:// or smtps:// URL")
        return value

    @field_validator("public_url")
    @classmethod
    def _public(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("public_url must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator(
        "rate_limit_login",
        "rate_limit_login_per_address",
        "rate_limit_register",
        "rate_limit_bookings",
        "rate_limit_calendar_feed",
    )
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        if not value.strip():
            return value
        try:
            items = parse_many(value)
        except ValueError as exc:
            raise ValueError(f"not a rate limit like '10/minute;100/hour': {value!r}") from exc
        if any(item.amount < 1 for item in items):  # that would refuse everyone; an empty value means no limit
            raise ValueError(f"not a rate limit: {value!r} allows no request at all (leave it empty for no limit)")
        return value

    @property
    def mode(self) -> Mode:
        return Mode.EMBEDDED if self.is_sqlite else Mode.DISTRIBUTED

    @property
    def pooled(self) -> bool:
        """``database_url`` goes through a transaction pooler: no session state (prepared statements) on it."""
        return self.database_direct_url is not None and not self.is_sqlite

    @property
    def session_database_url(self) -> str:
        """Where connections that keep session state (LISTEN, advisory locks, migrations) go."""
        return self.database_direct_url if self.pooled and self.database_direct_url else self.database_url

    @property
    def mail_enabled(self) -> bool:
        return self.smtp_url is not None

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def sqlite_path(self) -> Path | None:
        if not self.is_sqlite:
            return None
        path = self.database_url.split("///", 1)[1] if "///" in self.database_url else ""
        return Path(path) if path and path != ":memory:" else None


def generate_key_ring_entry() -> str:
    """A fresh ``kid:secret`` pair, for ``BOOKINGS_JWT_KEYS``."""
    return f"{secrets.token_hex(4)}:{secrets.token_urlsafe(48)}"
