"""Sending one event to one endpoint: a signed POST (Standard Webhooks), no redirects, bounded in time."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

import httpx
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks import Webhook

from bookings.db import Database
from bookings.jobs.queue import ClaimedJob
from bookings.jobs.worker import JobFailed
from bookings.kit.time import Clock
from bookings.webhooks.models import WebhookEndpoint
from bookings.webhooks.ssrf import check_destination


def signature_header(secrets_in_use: list[str], message_id: str, timestamp: datetime, body: str) -> str:
    """``v1,<sig>`` for each secret, space-separated: receivers accept any one they can verify."""
    return " ".join(Webhook(secret).sign(message_id, timestamp, body) for secret in secrets_in_use)


class WebhookSender:
    """The job handler for deliveries. Takes an httpx transport so tests can point it anywhere."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        allow_private: bool,
        timeout_seconds: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._allow_private = allow_private
        self._client = httpx.AsyncClient(
            timeout=timeout_seconds,
            follow_redirects=False,
            transport=transport,
            headers={"user-agent": "bookings-webhooks/1"},
        )

    async def deliver(self, job: ClaimedJob, _session: AsyncSession) -> None:
        # Read on a session of its own: the job's write session stays unused (no lock held) during the POST.
        async with self._db.read_sessions() as reads:
            endpoint = await reads.get(WebhookEndpoint, uuid.UUID(job.payload["endpointId"]))
        if endpoint is None:
            return  # deleted since: nothing to deliver to
        await check_destination(endpoint.url, allow_private=self._allow_private)
        now = self._clock()
        in_use = [endpoint.secret]
        if endpoint.previous_secret and endpoint.previous_secret_until and endpoint.previous_secret_until > now:
            in_use.append(endpoint.previous_secret)
        body = json.dumps(job.payload["event"], separators=(",", ":"))
        message_id = f"msg_{job.id}"  # the same on every retry of this delivery
        headers = {
            "content-type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signature_header(in_use, message_id, now, body),
        }
        try:
            async with self._client.stream("POST", endpoint.url, content=body, headers=headers) as response:
                status = response.status_code  # the body is never read: a receiver cannot make us buffer it
        except httpx.HTTPError as exc:
            raise JobFailed(f"{type(exc).__name__}: {exc}") from exc
        if not 200 <= status < 300:
            raise JobFailed(f"HTTP {status} from the endpoint")

    async def close(self) -> None:
        await self._client.aclose()
