"""Registering endpoints, rotating their secrets, and turning each event into one delivery job per endpoint."""

from __future__ import annotations

import base64
import secrets
import uuid
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bookings.errors import NotFound
from bookings.events.schemas import Envelope
from bookings.jobs.queue import JobQueue, NewJob
from bookings.kit.pagination import Page, PageRequest, keyset, paged
from bookings.kit.time import Clock
from bookings.webhooks.models import WebhookEndpoint
from bookings.webhooks.schemas import WebhookIn, WebhookOut, WebhookWithSecret
from bookings.webhooks.ssrf import check_destination

KIND = "webhook"
ROTATION_OVERLAP = timedelta(hours=24)


class WebhookNotFound(NotFound):
    title, slug = "Webhook not found", "webhook-not-found"


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


class Webhooks:
    def __init__(self, jobs: JobQueue, clock: Clock, *, allow_private: bool, max_attempts: int) -> None:
        self._jobs = jobs
        self._clock = clock
        self._allow_private = allow_private
        self._max_attempts = max_attempts

    async def create(self, session: AsyncSession, data: WebhookIn) -> WebhookWithSecret:
        url = str(data.url)
        await check_destination(url, allow_private=self._allow_private)
        endpoint = WebhookEndpoint(
            id=uuid.uuid4(),
            url=url,
            event_types=[t.value for t in dict.fromkeys(data.event_types)],
            secret=new_secret(),
            created_at=self._clock(),
        )
        session.add(endpoint)
        await session.flush()
        return WebhookWithSecret.model_validate(endpoint)

    async def registered(self, session: AsyncSession, paging: PageRequest) -> Page[WebhookOut]:
        columns = (WebhookEndpoint.created_at, WebhookEndpoint.id)
        rows = list(await session.scalars(keyset(select(WebhookEndpoint), paging, *columns)))
        total = None
        if paging.page is not None:
            total = await session.scalar(select(func.count()).select_from(WebhookEndpoint)) or 0
        return paged(rows, total, paging, WebhookOut.model_validate, lambda row: (row.created_at, row.id))

    async def delete(self, session: AsyncSession, webhook_id: uuid.UUID) -> None:
        await session.delete(await self._get(session, webhook_id))

    async def rotate_secret(self, session: AsyncSession, webhook_id: uuid.UUID) -> WebhookWithSecret:
        """A new secret signs from now on; the old one signs too (a second signature) for 24 hours."""
        endpoint = await self._get(session, webhook_id)
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_until = self._clock() + ROTATION_OVERLAP
        endpoint.secret = new_secret()
        await session.flush()
        return WebhookWithSecret.model_validate(endpoint)

    async def enqueue_deliveries(self, session: AsyncSession, events: list[Envelope]) -> None:
        """One delivery job per event and subscribed endpoint, in the transaction that numbers the events."""
        endpoints = list(await session.scalars(select(WebhookEndpoint)))
        if not endpoints:
            return
        now = self._clock()
        for event in events:
            for endpoint in endpoints:
                if event.event in endpoint.event_types:
                    payload = {"endpointId": str(endpoint.id), "event": event.public()}
                    job = NewJob(kind=KIND, payload=payload, run_at=now, max_attempts=self._max_attempts)
                    self._jobs.schedule(session, job, now=now)

    @staticmethod
    async def _get(session: AsyncSession, webhook_id: uuid.UUID) -> WebhookEndpoint:
        endpoint = await session.get(WebhookEndpoint, webhook_id)
        if endpoint is None:
            raise WebhookNotFound("No webhook with this id.")
        return endpoint
