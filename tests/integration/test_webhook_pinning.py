"""A delivery connects to the address its SSRF check passed, whatever the name resolves to afterwards.

DNS is outside the service, so the resolver is a stand-in here (``Names``); the HTTP side is real: a loopback
receiver, reached under a ``.invalid`` name that no real DNS answers (RFC 2606), so a delivery that looked the
name up again instead of using the checked address could not arrive.
"""

from __future__ import annotations

import asyncio
import ssl
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import pytest
import trustme

from bookings.db import Database
from bookings.errors import InvalidInput
from bookings.jobs.queue import ClaimedJob
from bookings.jobs.worker import JobFailed
from bookings.webhooks.delivery import WebhookSender
from bookings.webhooks.models import WebhookEndpoint
from tests.support.webhook_receiver import WebhookReceiver

NOW = datetime(2031, 1, 1, 9, tzinfo=UTC)
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@dataclass
class Names:
    """A resolver whose answers change from one lookup to the next (the last one repeats)."""

    answers: list[list[str]]
    lookups: list[str] = field(default_factory=list)

    async def __call__(self, host: str) -> list[str]:
        self.lookups.append(host)
        return self.answers[min(len(self.lookups), len(self.answers)) - 1]


async def _endpoint(db: Database, url: str) -> uuid.UUID:
    endpoint = WebhookEndpoint(url=url, event_types=["booking.created"], secret=SECRET, created_at=NOW)
    async with db.write_sessions() as session, session.begin():
        session.add(endpoint)
    return endpoint.id


def _job(endpoint_id: uuid.UUID) -> ClaimedJob:
    event = {"id": 7, "event": "booking.created", "data": {}, "occurredAt": "2031-01-01T09:00:00Z"}
    return ClaimedJob(
        id=42,
        kind="webhook",
        payload={"endpointId": str(endpoint_id), "event": event},
        attempts=1,
        max_attempts=3,
        due_at=NOW,
    )


async def _deliver(
    db: Database, names: Names, url: str, *, allow_private: bool, trust: ssl.SSLContext | None = None
) -> None:
    transport = httpx.AsyncHTTPTransport(verify=trust) if trust is not None else None
    sender = WebhookSender(
        db, lambda: NOW, allow_private=allow_private, timeout_seconds=5, resolve=names, transport=transport
    )
    try:
        async with db.write_sessions() as session:
            await sender.deliver(_job(await _endpoint(db, url)), session)
    finally:
        await sender.close()


async def test_the_delivery_goes_to_the_checked_address_under_its_name(db: Database) -> None:
    with WebhookReceiver() as receiver:
        port = receiver.port
        # The first answer is checked and used; a rebinding answer after it must never be looked up.
        names = Names([["127.0.0.1"], ["10.9.9.9"]])
        await _deliver(db, names, f"http://hooks.invalid:{port}/hook?v=1", allow_private=True)
        for _ in range(100):
            if receiver.deliveries:
                break
            await asyncio.sleep(0.01)
    assert names.lookups == ["hooks.invalid"]
    (delivery,) = receiver.deliveries
    headers = {name.lower(): value for name, value in delivery.headers.items()}
    assert headers["host"] == f"hooks.invalid:{port}"
    assert headers["webhook-id"] == "msg_42"


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    """A certificate authority of the test's own (the receiver's certificates, and the only one the sender trusts)."""
    return trustme.CA()


def _tls_receiver(authority: trustme.CA, name: str) -> WebhookReceiver:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert(name).configure_cert(context)
    return WebhookReceiver(tls=context)


def _trusting(authority: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    authority.configure_trust(context)
    return context


async def test_https_is_verified_against_the_name_not_the_address(db: Database, authority: trustme.CA) -> None:
    with _tls_receiver(authority, "hooks.invalid") as receiver:
        names = Names([["127.0.0.1"]])
        url = f"https://hooks.invalid:{receiver.port}/hook"
        await _deliver(db, names, url, allow_private=True, trust=_trusting(authority))
    assert len(receiver.deliveries) == 1


async def test_https_to_a_server_with_another_names_certificate_fails(db: Database, authority: trustme.CA) -> None:
    with _tls_receiver(authority, "someone-else.invalid") as receiver:
        url = f"https://hooks.invalid:{receiver.port}/hook"
        with pytest.raises(JobFailed, match=r"(?i)certificate"):
            await _deliver(db, Names([["127.0.0.1"]]), url, allow_private=True, trust=_trusting(authority))
    assert receiver.deliveries == []


async def test_a_name_that_turned_private_is_refused_before_any_connection(db: Database) -> None:
    with WebhookReceiver() as receiver:
        port = receiver.port
        names = Names([["127.0.0.1", "93.184.216.34"]])  # one internal address among public ones is enough
        with pytest.raises(InvalidInput) as refused:
            await _deliver(db, names, f"http://hooks.invalid:{port}/hook", allow_private=False)
    assert refused.value.errors is not None
    assert refused.value.errors[0].type == "webhook_url_not_public"
    assert receiver.attempts == 0


async def test_a_name_that_no_longer_resolves_is_refused(db: Database) -> None:
    with pytest.raises(InvalidInput, match="does not resolve"):
        await _deliver(db, Names([[]]), "https://hooks.invalid/hook", allow_private=False)
