"""Sending one event to one endpoint: a signed POST (Standard Webhooks), no redirects, bounded in time.

The POST goes to the address the SSRF check passed, not to whatever the name resolves to a moment later: the URL's
host is replaced by that address, with the name kept in ``Host`` and, for HTTPS, in the TLS handshake (SNI), so
the certificate is still verified against the name.
"""

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
from bookings.webhooks.ssrf import Resolver, pinned_address, system_resolver


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
        resolve: Resolver = system_resolver,
    ) -> None:
        self._db = db
        self._clock = clock
        self._allow_private = allow_private
        self._resolve = resolve
        self._client = httpx.AsyncClient(
            timeout=timeout_seconds,
            follow_redirects=False,
            transport=transport,
            # No connection is kept for another delivery: connections are keyed by address, and two endpoints
            # behind one address (a CDN) must not share one set up for the other's name.
            limits=httpx.Limits(max_keepalive_connections=0),
            headers={"user-agent": "bookings-webhooks/1"},
        )

    async def deliver(self, job: ClaimedJob, _session: AsyncSession) -> None:
        # Read on a session of its own: the job's write session stays unused (no lock held) during the POST.
        async with self._db.read_sessions() as reads:
            endpoint = await reads.get(WebhookEndpoint, uuid.UUID(job.payload["endpointId"]))
        if endpoint is None:
            return  # deleted since: nothing to deliver to
        url = httpx.URL(endpoint.url)
        address = await pinned_address(endpoint.url, allow_private=self._allow_private, resolve=self._resolve)
        now = self._clock()
        in_use = [endpoint.secret]
        if endpoint.previous_secret and endpoint.previous_secret_until and endpoint.previous_secret_until > now:
            in_use.append(endpoint.previous_secret)
        body = json.dumps(job.payload["event"], separators=(",", ":"))
        message_id = f"msg_{job.id}"  # the same on every retry of this delivery
        headers = {
            "host": url.netloc.decode("ascii"),
            "content-type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signature_header(in_use, message_id, now, body),
        }
        try:
            async with self._client.stream(
                "POST",
                url.copy_with(host=address),
                content=body,
                headers=headers,
                extensions={"sni_hostname": url.raw_host.decode("ascii")} if url.scheme == "https" else {},
            ) as response:
                status = response.status_code  # the body is never read: a receiver cannot make us buffer it
        except httpx.HTTPError as exc:
            raise JobFailed(f"{type(exc).__name__}: {exc}") from exc
        if not 200 <= status < 300:
            raise JobFailed(f"HTTP {status} from the endpoint")

    async def close(self) -> None:
        await self._client.aclose()
