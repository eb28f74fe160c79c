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
from bookings.config import Settings
from bookings.db import Database
from bookings.events import repository as events_repository
from bookings.events.bus import EventBus, bus_from_settings
from bookings.events.coordination import coordinator_from_settings
from bookings.events.hub import Hub
from bookings.events.outbox import Outbox
from bookings.events.relay import Relay
from bookings.idempotency import repository as idempotency
from bookings.jobs.queue import JobQueue
from bookings.jobs.service import DeadLetters
from bookings.jobs.wakeup import Wakeup, wakeup_from_settings
from bookings.jobs.worker import Worker
from bookings.kit.pagination import Cursors
from bookings.kit.time import Clock
from bookings.ops.metrics import Metrics
from bookings.ops.rate_limits import RateLimiter, rate_limiter_from_settings
from bookings.webhooks import service as webhook_jobs
from bookings.webhooks.delivery import WebhookSender
from bookings.webhooks.service import Webhooks

REDIS_TIMEOUT_SECONDS = 2.0


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
    relay = Relay(
        db,
        bus,
        coordinator,
        metrics,
        clock,
        poll_seconds=settings.relay_poll_seconds,
        retention=timedelta(days=settings.event_retention_days),
        on_numbered=webhooks.enqueue_deliveries,
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
    keep_keys = timedelta(hours=settings.idempotency_retention_hours)
    worker.prune_also(lambda session, now: idempotency.prune(session, now - keep_keys))
    # Health checks and rate-limit counters; the event bus keeps a client of its own (its reads block).
    redis = (
        aioredis.from_url(settings.redis_url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=2)
        if settings.redis_url
        else None
    )
    keys = KeyRing.from_settings(settings)
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
    )
