"""Accounts and slots for the SDK tests, made through the SDK itself."""

from __future__ import annotations

import itertools
import secrets
from datetime import UTC, datetime, timedelta

from bookings_client import AsyncBookingsClient, BookingsClient, User

PASSWORD = "Correct-Horse-9!"
_slots = itertools.count()


def slot(hours: int = 1) -> tuple[datetime, datetime]:
    """A fresh future slot; each call returns a different, non-overlapping one."""
    base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=40)
    start = base + timedelta(hours=next(_slots) * 2)
    return start, start + timedelta(hours=hours)


async def signed_in(client: AsyncBookingsClient, role: str = "user") -> User:
    email = f"sdk-{role}-{secrets.token_hex(5)}@example.com"
    user = await client.auth.register(
        email=email, password=PASSWORD, name=role.title(), role="provider" if role == "provider" else "user"
    )
    await client.auth.login(email=email, password=PASSWORD)
    return user


def signed_in_sync(client: BookingsClient, role: str = "user") -> User:
    email = f"sdk-{role}-{secrets.token_hex(5)}@example.com"
    user = client.auth.register(
        email=email, password=PASSWORD, name=role.title(), role="provider" if role == "provider" else "user"
    )
    client.auth.login(email=email, password=PASSWORD)
    return user
