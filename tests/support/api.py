"""A thin test-side client: accounts and bookings in one call each, over real HTTP."""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

PASSWORD = "Str0ng-Passw0rd!"
_slots = itertools.count()


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def future_slot(hours: int = 1, *, days_ahead: int = 30) -> tuple[str, str]:
    """A fresh one-hour-ish slot in the future; each call returns a different, non-overlapping one."""
    base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=days_ahead)
    start = base + timedelta(hours=next(_slots) * 2)
    return iso(start), iso(start + timedelta(hours=hours))


@dataclass
class Account:
    id: str
    email: str
    role: str
    token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def register(client: httpx.AsyncClient, role: str = "user", name: str | None = None) -> dict[str, Any]:
    email = f"{role}-{secrets.token_hex(5)}@example.com"
    response = await client.post(
        "/v1/auth/register",
        json={"email": email, "password": PASSWORD, "name": name or role.title(), "role": role},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = await client.post("/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def account(client: httpx.AsyncClient, role: str = "user") -> Account:
    user = await register(client, role)
    tokens = await login(client, user["email"])
    return Account(user["id"], user["email"], role, tokens["accessToken"], tokens["refreshToken"])


async def book(
    client: httpx.AsyncClient,
    who: Account,
    provider: Account,
    slot: tuple[str, str] | None = None,
    **extra: Any,
) -> httpx.Response:
    start, end = slot or future_slot()
    body = {"providerId": provider.id, "startTime": start, "endTime": end, **extra}
    return await client.post("/v1/bookings", json=body, headers=who.headers)


async def admin_account(client: httpx.AsyncClient, database_url: str, jwt_keys: str) -> Account:
    """An admin, made the only way admins are made (``bookings.admin.create_admin``, behind the CLI)."""
    from bookings.admin import create_admin
    from bookings.config import Settings

    email = f"admin-{secrets.token_hex(4)}@example.com"
    settings = Settings(
        database_url=database_url,
        jwt_keys=jwt_keys,
        argon2_time_cost=1,
        argon2_memory_cost_kib=1024,
        argon2_parallelism=1,
    )
    admin_id = await create_admin(settings, email=email, password=PASSWORD, name="Admin")
    tokens = await login(client, email)
    return Account(str(admin_id), email, "admin", tokens["accessToken"], tokens["refreshToken"])
