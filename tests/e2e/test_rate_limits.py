"""Rate limits on login and booking creation, on real server processes.

Distributed: two instances count in one private Redis, so a client that alternates between them meets one limit.
Embedded: one process counts in memory. Either way a refused request is a ``429`` problem with ``Retry-After``,
writes nothing, and the ``RateLimit`` fields tell a client where it stands before it gets there.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pydantic
import pytest

from bookings.config import Settings
from tests.conftest import Service, start_service
from tests.support.api import PASSWORD, Account, account, book, register
from tests.support.cluster import Cluster
from tests.support.databases import ScratchDatabase

LIMITS = {
    "BOOKINGS_RATE_LIMIT_LOGIN": "3/minute",
    "BOOKINGS_RATE_LIMIT_BOOKINGS": "3/minute",
    "BOOKINGS_RATE_LIMIT_CALENDAR_FEED": "3/minute",
}
# One policy at a time where it is the subject (the others stay at TEST_ENV's height).
PER_ADDRESS = {"BOOKINGS_RATE_LIMIT_LOGIN_PER_ADDRESS": "3/minute", "BOOKINGS_RATE_LIMIT_REGISTER": "2/minute"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster.create(tmp_path_factory.mktemp("rate-limits"), **LIMITS)
    cluster.start("a")
    cluster.start("b")
    yield cluster
    cluster.teardown()


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = start_service("sqlite", tmp_path_factory.mktemp("rate-limits-embedded"), **LIMITS)
    yield service
    service.server.stop()
    service.db.drop()


def fields(header: str) -> dict[str, dict[str, int]]:
    """A ``RateLimit`` or ``RateLimit-Policy`` field: ``{name: {parameter: value}}`` for each of its items."""
    found = {}
    for item in header.split(", "):
        match = re.fullmatch(r'"([a-z0-9-]+)"((?:;[a-z]+=\d+)+)', item)
        assert match, header
        found[match[1]] = {k: int(v) for k, v in re.findall(r";([a-z]+)=(\d+)", match[2])}
    return found


def standing(response: httpx.Response, name: str) -> tuple[int, int]:
    """``(requests left, seconds to reset)`` under the policy ``name``."""
    limit = fields(response.headers["RateLimit"])[name]
    return limit["r"], limit["t"]


def policy(response: httpx.Response, name: str) -> tuple[int, int]:
    """``(quota, window seconds)`` of the policy ``name``."""
    item = fields(response.headers["RateLimit-Policy"])[name]
    return item["q"], item["w"]


def assert_refused(response: httpx.Response, name: str) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "/problems/rate-limited"
    assert problem["status"] == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert policy(response, name) == (3, 60)
    assert standing(response, name)[0] == 0


async def test_login_attempts_are_counted_across_instances(cluster: Cluster) -> None:
    a = httpx.AsyncClient(base_url=cluster.url(0), timeout=30)
    b = httpx.AsyncClient(base_url=cluster.url(1), timeout=30)
    async with a, b:
        user = await register(a)
        wrong = {"email": user["email"], "password": "Wr0ng-Passw0rd!"}
        right = {"email": user["email"], "password": PASSWORD}
        # Failed and successful attempts count alike; the limit follows the email, whichever instance is asked.
        first = await a.post("/v1/auth/login", json=wrong)
        second = await b.post("/v1/auth/login", json=right)
        # The same account however its email is written: case, and padding that pydantic's stripping keeps.
        third = await a.post("/v1/auth/login", json={**wrong, "email": user["email"].upper() + "\x1c"})
        assert [r.status_code for r in (first, second, third)] == [401, 200, 401]
        assert [standing(r, "login")[0] for r in (first, second, third)] == [2, 1, 0]
        assert policy(second, "login") == (3, 60)

        refused = await b.post("/v1/auth/login", json=right)  # the right password does not get past the limit
        assert_refused(refused, "login")
        assert "accessToken" not in refused.text

        # Another account from the same address has a count of its own.
        other = await register(a)
        assert (await b.post("/v1/auth/login", json={"email": other["email"], "password": PASSWORD})).status_code == 200
        metrics = (await b.get("/metrics.prom")).text
    assert 'bookings_rate_limited_total{limit="login"} 1.0' in metrics


async def _create_until_refused(urls: list[str], user: Account, provider: Account) -> list[httpx.Response]:
    clients = [httpx.AsyncClient(base_url=url, timeout=30) for url in urls]
    try:
        return [await book(clients[i % len(clients)], user, provider) for i in range(4)]
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))


async def _accounts(url: str) -> tuple[Account, Account, Account]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        user, other, provider = await asyncio.gather(
            account(client, "user"), account(client, "user"), account(client, "provider")
        )
    return user, other, provider


@pytest.fixture(params=["embedded", "distributed"])
def instances(request: pytest.FixtureRequest) -> tuple[list[str], ScratchDatabase]:
    """The instances' URLs and their database: the embedded process, or the cluster's two."""
    if request.param == "embedded":
        service: Service = request.getfixturevalue("embedded")
        return [service.server.url], service.db
    cluster: Cluster = request.getfixturevalue("cluster")
    return [cluster.url(0), cluster.url(1)], cluster.db


async def test_booking_creation_is_limited_per_user_and_a_refusal_writes_nothing(
    instances: tuple[list[str], ScratchDatabase],
) -> None:
    urls, db = instances
    user, other, provider = await _accounts(urls[0])

    responses = await _create_until_refused(urls, user, provider)
    assert [r.status_code for r in responses] == [201, 201, 201, 429], [r.text for r in responses]
    assert [standing(r, "create-booking")[0] for r in responses] == [2, 1, 0, 0]
    assert_refused(responses[-1], "create-booking")
    assert db.count_bookings(provider.id) == 3

    async with httpx.AsyncClient(base_url=urls[-1], timeout=30) as client:
        assert (await book(client, other, provider)).status_code == 201  # another user is not held back
        listed = (await client.get("/v1/bookings", headers=user.headers)).json()
    assert listed["total"] == 3
    assert db.count_bookings(provider.id) == 4


async def test_a_calendar_feed_is_limited_per_feed_across_instances(
    instances: tuple[list[str], ScratchDatabase],
) -> None:
    urls, _ = instances
    async with httpx.AsyncClient(base_url=urls[0], timeout=30) as first:
        owners = [await account(first) for _ in range(2)]
    async with httpx.AsyncClient(timeout=30) as client:
        feeds = []
        for owner in owners:
            issued = await client.post(f"{urls[0]}/v1/users/me/calendar-feed", headers=owner.headers)
            feeds.append(issued.json()["url"].removeprefix(urls[0]))
        responses = [await client.get(urls[i % len(urls)] + feeds[0]) for i in range(4)]
        assert [r.status_code for r in responses] == [200, 200, 200, 429], [r.text for r in responses]
        assert_refused(responses[-1], "calendar-feed")
        assert (await client.get(urls[-1] + feeds[1])).status_code == 200  # another feed is not held back


@pytest.fixture
def per_address(tmp_path: Path) -> Iterator[Service]:
    service = start_service("sqlite", tmp_path, **PER_ADDRESS)
    yield service
    service.server.stop()
    service.db.drop()


async def test_logins_from_one_address_are_limited_whatever_the_account(per_address: Service) -> None:
    """Password spraying: one address trying one password on many accounts."""
    async with httpx.AsyncClient(base_url=per_address.server.url, timeout=30) as client:
        emails = [(await register(client))["email"] for _ in range(2)]
        tries = [
            await client.post("/v1/auth/login", json={"email": email, "password": "Wr0ng-Passw0rd!"})
            for email in [*emails, "nobody@example.com", "someone@example.com"]
        ]
    assert [r.status_code for r in tries] == [401, 401, 401, 429]
    assert tries[-1].json()["type"] == "/problems/rate-limited"
    assert policy(tries[-1], "login-address") == (3, 60)


async def test_registrations_from_one_address_are_limited_and_a_refused_one_creates_nothing(
    per_address: Service,
) -> None:
    async with httpx.AsyncClient(base_url=per_address.server.url, timeout=30) as client:
        await register(client)
        await register(client)
        body = {"email": "third@example.com", "password": PASSWORD, "name": "Third", "role": "user"}
        refused = await client.post("/v1/auth/register", json=body)
        login = await client.post("/v1/auth/login", json={"email": body["email"], "password": PASSWORD})
    assert refused.status_code == 429, refused.text
    assert policy(refused, "register") == (2, 60)
    assert login.status_code == 401  # no such account


@pytest.fixture
def lone_instance(tmp_path: Path) -> Iterator[Cluster]:
    """One instance with a Redis of its own, for a test that stops that Redis."""
    cluster = Cluster.create(tmp_path, **LIMITS)
    cluster.start("a")
    yield cluster
    cluster.teardown()


async def test_an_unreachable_counter_store_lets_requests_through(lone_instance: Cluster) -> None:
    user, _, provider = await _accounts(lone_instance.url(0))
    lone_instance.redis.stop()
    async with httpx.AsyncClient(base_url=lone_instance.url(0), timeout=30) as client:
        logins = [await client.post("/v1/auth/login", json={"email": user.email, "password": PASSWORD})]
        created = [await book(client, user, provider) for _ in range(4)]
    # Not counted while Redis is away: a Redis outage costs the limits, never the service.
    assert [r.status_code for r in logins] == [200]
    assert [r.status_code for r in created] == [201] * 4
    assert "RateLimit" not in created[0].headers
    assert "rate_limit_unavailable" in lone_instance.servers[0].log()


@pytest.mark.parametrize("spec", ["ten a minute", "10/fortnight", "10/minute;", "0/minute"])
def test_a_malformed_limit_is_refused_at_start_up(spec: str) -> None:
    with pytest.raises(pydantic.ValidationError, match="not a rate limit"):
        Settings(rate_limit_login=spec)


def test_an_empty_limit_turns_it_off() -> None:
    assert Settings(rate_limit_bookings="").rate_limit_bookings == ""
