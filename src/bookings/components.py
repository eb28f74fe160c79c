"""Every long-lived part of the service, built once from the settings (the composition root's parts list).

``create_app`` serves them over HTTP; ``bookings worker`` runs their job worker alone.
"""

from __future__ import annotations

import contextlib
import functools
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncSession

from bookings.auth.keyring import KeyRing
from bookings.auth.passwords import PasswordHasher
from bookings.auth.service import AuthService
from bookings.availability.service import Availability
from bookings.bookings import policy
from bookings.bookings import reminders as reminder_jobs
from bookings.bookings import repository as booking_repository
from bookings.bookings.cache import ReadCache
from bookings.bookings.reminders import Reminders
from bookings.bookings.service import BookingService
from bookings.bookings.store import store_from_settings
from bookings.calendar.feeds import CalendarFeeds
from bookings.config import Settings
from bookings.db import Database
from bookings.events import repository as events_repository
from bookings.events.bus import EventBus, bus_from_settings
from bookings.events.coordination import coordinator_from_settings
from bookings.events.hub import Hub
from bookings.events.outbox import Outbox
from bookings.events.relay import Relay
from bookings.events.schemas import Envelope
from bookings.idempotency import repository as idempotency
from bookings.jobs.queue import JobQueue
from bookings.jobs.service import DeadLetters
from bookings.jobs.wakeup import Wakeup, wakeup_from_settings
from bookings.jobs.worker import Worker
from bookings.kit.pagination import Cursors
from bookings.kit.time import Clock
from bookings.mail import service as mail_jobs
from bookings.mail.service import Mail, MailSettings
from bookings.mail.smtp import SmtpMailer, SmtpTarget
from bookings.mail.unsubscribe import UnsubscribeTokens
from bookings.ops.metrics import Metrics
from bookings.ops.rate_limits import RateLimiter, rate_limiter_from_settings
from bookings.webhooks import service as webhook_jobs
from bookings.webhooks.delivery import WebhookSender
from bookings.webhooks.service import Webhooks

REDIS_TIMEOUT_SECONDS = 2.0
# Where ``bookings serve`` listens by default: mail links point there when ``BOOKINGS_PUBLIC_URL`` is unset.
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"


@dataclass
class Components:
    settings: Settings
    metrics: Metrics
    db: Database
    redis: aioredis.Redis | None
    rate_limiter: RateLimiter
    bus: EventBus
    relay: Relay
    hub: Hub
    wakeup: Wakeup
    auth: AuthService
    bookings: BookingService
    webhooks: Webhooks
    dead_letters: DeadLetters
    worker: Worker
    sender: WebhookSender
    cursors: Cursors
    availability: Availability
    calendar_feeds: CalendarFeeds
    unsubscribe_tokens: UnsubscribeTokens
    mail: Mail | None

    async def close(self) -> None:
        await self.relay.close()
        await self.bus.close()
        await self.wakeup.close()
        await self.sender.close()
        await self.bookings.close()
        await self.db.dispose()
        if self.redis is not None:
            with contextlib.suppress(Exception):
                await self.redis.aclose()


async def _busy_time(
    session: AsyncSession, provider_id: uuid.UUID, lo: datetime, hi: datetime
) -> list[tuple[datetime, datetime, datetime]]:
    """What a slot search may read of other people's bookings: when the provider is busy (``policy.BusyTime``)."""
    return await booking_repository.blocked_ranges(session, policy.busy_time(provider_id), lo, hi)


def _mail(settings: Settings, db: Database, jobs: JobQueue, tokens: UnsubscribeTokens, clock: Clock) -> Mail | None:
    if settings.smtp_url is None:
        return None
    mailer = SmtpMailer(SmtpTarget.parse(settings.smtp_url), timeout_seconds=settings.mail_timeout_seconds)
    config = MailSettings(
        sender=settings.mail_from,
        public_url=settings.public_url or DEFAULT_PUBLIC_URL,
        max_attempts=settings.mail_max_attempts,
    )
    return Mail(db, jobs, mailer, tokens, clock, config)


def build(settings: Settings, clock: Clock) -> Components:
    metrics = Metrics()
    db = Database(settings)
    coordinator = coordinator_from_settings(settings)
    bus = bus_from_settings(settings)
    outbox = Outbox(coordinator, fault_kill_after_commit=settings.fault_kill_after_commit)
    wakeup = wakeup_from_settings(settings)
    jobs = JobQueue(wakeup, metrics)
    cache = ReadCache(settings.cache_entries, ttl=settings.cache_ttl_seconds)
    reminders = Reminders(jobs, outbox, metrics, clock, lead=timedelta(seconds=settings.reminder_lead_seconds))
    webhooks = Webhooks(
        jobs, clock, allow_private=settings.webhook_allow_private, max_attempts=settings.webhook_max_attempts
    )
    keys = KeyRing.from_settings(settings)
    unsubscribe_tokens = UnsubscribeTokens(keys.secrets)
    mail = _mail(settings, db, jobs, unsubscribe_tokens, clock)

    async def on_numbered(session: AsyncSession, events: list[Envelope]) -> None:
        """What each committed event owes, written in the transaction that numbers it."""
        await webhooks.enqueue_deliveries(session, events)
        if mail is not None:
            await mail.enqueue(session, events)

    relay = Relay(
        db,
        bus,
        coordinator,
        metrics,
        clock,
        poll_seconds=settings.relay_poll_seconds,
        retention=timedelta(days=settings.event_retention_days),
        on_numbered=on_numbered,
    )
    sender = WebhookSender(
        db, clock, allow_private=settings.webhook_allow_private, timeout_seconds=settings.webhook_timeout_seconds
    )
    worker = Worker(
        db,
        wakeup,
        metrics,
        clock,
        concurrency=settings.worker_concurrency,
        poll_seconds=settings.job_poll_seconds,
        lease=timedelta(seconds=settings.job_lease_seconds),
        backoff_base=settings.job_backoff_seconds,
        backoff_cap=settings.job_backoff_cap_seconds,
    )
    worker.register(reminder_jobs.KIND, reminders.fire)
    worker.register(webhook_jobs.KIND, sender.deliver)
    if mail is not None:
        worker.register(mail_jobs.KIND, mail.deliver)
    keep_keys = timedelta(hours=settings.idempotency_retention_hours)
    worker.prune_also(lambda session, now: idempotency.prune(session, now - keep_keys))
    # Health checks and rate-limit counters; the event bus keeps a client of its own (its reads block).
    redis = (
        aioredis.from_url(settings.redis_url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=2)
        if settings.redis_url
        else None
    )
    store = store_from_settings(settings, db, outbox, jobs)
    # PostgreSQL's store reads on its asyncpg pool; SQLite's has no such method (and no second pool).
    availability = Availability(db, clock, _busy_time, getattr(store, "fetch", None))
    return Components(
        settings=settings,
        metrics=metrics,
        db=db,
        redis=redis,
        rate_limiter=rate_limiter_from_settings(settings, redis, metrics),
        bus=bus,
        relay=relay,
        hub=Hub(bus, metrics, cache, functools.partial(events_repository.between, db)),
        wakeup=wakeup,
        auth=AuthService(settings, keys, PasswordHasher(settings), metrics, clock),
        bookings=BookingService(
            settings,
            store,
            cache,
            outbox,
            reminders,
            metrics,
            clock,
            availability,
        ),
        availability=availability,
        webhooks=webhooks,
        dead_letters=DeadLetters(wakeup, clock),
        worker=worker,
        sender=sender,
        cursors=Cursors(keys.secrets),
        calendar_feeds=CalendarFeeds(clock, longest=timedelta(minutes=settings.max_booking_minutes)),
        unsubscribe_tokens=unsubscribe_tokens,
        mail=mail,
    )
