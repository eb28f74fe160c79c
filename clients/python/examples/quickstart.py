"""A typed tour of the SDK: sign up a provider and a user, book, list, reschedule, cancel, and watch the events.

    python examples/quickstart.py http://127.0.0.1:8000

It prints one JSON line per step. It is checked with ``mypy --strict`` by the service's test suite.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
from datetime import UTC, datetime, timedelta

from bookings_client import (
    AsyncBookingsClient,
    Booking,
    BookingsClient,
    ConflictError,
    Event,
    Page,
    ValidationError,
)

PASSWORD = "Correct-Horse-9!"


def say(step: str, **details: object) -> None:
    print(json.dumps({"step": step, **details}, default=str), flush=True)


def sync_tour(base_url: str) -> None:
    suffix = secrets.token_hex(4)
    with BookingsClient(base_url, timeout=10) as client:
        provider = client.auth.register(
            email=f"provider-{suffix}@example.com", password=PASSWORD, name="Dr Who", role="provider"
        )
        client.auth.register(email=f"ada-{suffix}@example.com", password=PASSWORD, name="Ada")
        client.auth.login(email=f"ada-{suffix}@example.com", password=PASSWORD)
        say("signed_in", user=client.users.me().name, providers=client.providers.list(limit=100).total)

        start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=7)
        booking: Booking = client.bookings.create(
            provider_id=provider.id, start_time=start, end_time=start + timedelta(minutes=30), notes="first visit"
        )
        say("created", id=booking.id, start=booking.start_time.isoformat(), status=booking.status)

        page: Page[Booking] = client.bookings.list(type="upcoming", limit=10)
        say("listed", total=page.total, ids=[str(item.id) for item in page.items])

        try:
            client.bookings.create(provider_id=provider.id, start_time=start, end_time=start + timedelta(minutes=15))
        except ConflictError as error:
            say("conflict", status=error.status, detail=error.detail)

        try:
            client.bookings.create(provider_id=provider.id, start_time=start, end_time=start - timedelta(minutes=15))
        except ValidationError as error:
            say("invalid", status=error.status, fields=[field.field for field in error.errors])

        moved = client.bookings.reschedule(
            booking.id, start_time=start + timedelta(hours=1), end_time=start + timedelta(hours=1, minutes=30)
        )
        say("rescheduled", start=moved.start_time.isoformat())
        cancelled = client.bookings.cancel(booking.id, reason="feeling better")
        say("cancelled", status=cancelled.status, reason=cancelled.cancel_reason)
        client.auth.logout()


async def async_tour(base_url: str) -> None:
    suffix = secrets.token_hex(4)
    async with AsyncBookingsClient(base_url) as provider, AsyncBookingsClient(base_url) as user:
        me = await provider.auth.register(
            email=f"p-{suffix}@example.com", password=PASSWORD, name="Provider", role="provider"
        )
        await provider.auth.login(email=f"p-{suffix}@example.com", password=PASSWORD)
        await user.auth.register(email=f"u-{suffix}@example.com", password=PASSWORD, name="User")
        await user.auth.login(email=f"u-{suffix}@example.com", password=PASSWORD)

        async with provider.events() as stream:
            await asyncio.wait_for(stream.connected.wait(), timeout=10)
            start = datetime.now(UTC) + timedelta(days=3)
            await user.bookings.create(provider_id=me.id, start_time=start, end_time=start + timedelta(hours=1))
            event: Event = await asyncio.wait_for(anext(stream), timeout=10)
            say("event", type=event.event, booking=event.data.id, id=event.id)

        async for booking in user.bookings.iter(type="upcoming"):
            say("iterated", id=booking.id)


def main() -> None:
    base_url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000"
    sync_tour(base_url)
    asyncio.run(async_tour(base_url))


if __name__ == "__main__":
    main()
