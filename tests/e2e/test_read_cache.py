"""The read cache on real processes: two instances on PostgreSQL and a private Redis.

Each instance keeps hot bookings and booking pages in memory, dropped by the committed event stream (and, on the
instance that made a change, at its commit). What must hold: a read after a change on the same instance is never
stale; another instance catches up within the relay's lag; a cached booking is never shown to someone the
policy hides it from; and Redis going away only costs speed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.support.api import Account, account, admin_account, book
from tests.support.cluster import Cluster
from tests.support.redis_server import RedisServer

CATCH_UP_DEADLINE_S = 5.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster.started(tmp_path_factory.mktemp("read-cache"), "a", "b")
    yield cluster
    cluster.teardown()


@pytest.fixture
async def clients(cluster: Cluster) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    async with (
        httpx.AsyncClient(base_url=cluster.url(0), timeout=30) as a,
        httpx.AsyncClient(base_url=cluster.url(1), timeout=30) as b,
    ):
        yield a, b


async def _booking(client: httpx.AsyncClient) -> tuple[Account, Account, str]:
    user, provider = await account(client), await account(client, "provider")
    created = await book(client, user, provider, notes="first")
    assert created.status_code == 201, created.text
    return user, provider, created.json()["id"]


async def _notes(client: httpx.AsyncClient, who: Account, booking_id: str) -> str | None:
    response = await client.get(f"/v1/bookings/{booking_id}", headers=who.headers)
    assert response.status_code == 200, response.text
    notes: str | None = response.json()["notes"]
    return notes


async def _edit(client: httpx.AsyncClient, who: Account, booking_id: str, notes: str) -> None:
    changed = await client.patch(f"/v1/bookings/{booking_id}", json={"notes": notes}, headers=who.headers)
    assert changed.status_code == 200, changed.text


async def _page_notes(client: httpx.AsyncClient, who: Account) -> list[str | None]:
    response = await client.get("/v1/bookings?type=upcoming", headers=who.headers)
    assert response.status_code == 200, response.text
    return [item["notes"] for item in response.json()["items"]]


async def _until_notes(client: httpx.AsyncClient, who: Account, booking_id: str, expected: str) -> float:
    """Seconds until ``client`` shows ``expected`` both for the booking and on its page; fails after the deadline."""
    started = time.monotonic()
    while True:
        seen = (await _notes(client, who, booking_id), await _page_notes(client, who))
        if seen[0] == expected and expected in seen[1]:
            break
        assert time.monotonic() - started < CATCH_UP_DEADLINE_S, f"still {seen!r}, not {expected!r}"
        await asyncio.sleep(0.01)
    return time.monotonic() - started


class TestSameInstance:
    async def test_a_read_after_a_change_is_never_older_than_the_change(
        self, clients: tuple[httpx.AsyncClient, httpx.AsyncClient]
    ) -> None:
        a, _ = clients
        user, _provider, booking_id = await _booking(a)
        for n in range(25):
            assert await _notes(a, user, booking_id) is not None  # cached now, if it was not already
            await _edit(a, user, booking_id, f"edit {n}")
            assert await _notes(a, user, booking_id) == f"edit {n}"
            assert await _page_notes(a, user) == [f"edit {n}"]

    async def test_a_page_shows_a_new_booking_and_a_cancellation_at_once(
        self, clients: tuple[httpx.AsyncClient, httpx.AsyncClient]
    ) -> None:
        a, _ = clients
        user, provider, first = await _booking(a)
        assert (await a.get("/v1/bookings", headers=user.headers)).json()["total"] == 1
        second = (await book(a, user, provider)).json()["id"]
        page = (await a.get("/v1/bookings", headers=user.headers)).json()
        assert (page["total"], {item["id"] for item in page["items"]}) == (2, {first, second})
        assert (await a.post(f"/v1/bookings/{first}/cancel", headers=provider.headers)).status_code == 200
        page = (await a.get("/v1/bookings", headers=provider.headers)).json()
        assert {item["id"]: item["status"] for item in page["items"]} == {first: "cancelled", second: "confirmed"}


class TestOtherInstance:
    async def test_a_change_reaches_the_other_instance_within_the_relay_lag(
        self, clients: tuple[httpx.AsyncClient, httpx.AsyncClient]
    ) -> None:
        a, b = clients
        user, _provider, booking_id = await _booking(a)
        lags = []
        for n in range(10):
            assert await _notes(b, user, booking_id) is not None  # b caches it
            assert await _page_notes(b, user)  # and its page
            await _edit(a, user, booking_id, f"from a {n}")
            lags.append(await _until_notes(b, user, booking_id, f"from a {n}"))
        # The relay publishes as soon as PostgreSQL notifies it of the commit: well under its 0.5 s poll.
        assert sorted(lags)[len(lags) // 2] < 0.5, lags


class TestPolicy:
    async def test_a_cached_booking_is_shown_only_to_those_who_may_see_it(
        self, cluster: Cluster, clients: tuple[httpx.AsyncClient, httpx.AsyncClient]
    ) -> None:
        a, _ = clients
        user, provider, booking_id = await _booking(a)
        stranger, other_provider = await account(a), await account(a, "provider")
        admin = await admin_account(a, cluster.db.url, cluster.env["BOOKINGS_JWT_KEYS"])
        path = f"/v1/bookings/{booking_id}"
        for _ in range(3):  # the first read fills the cache; the others are served from it
            assert (await a.get(path, headers=user.headers)).status_code == 200
            assert (await a.get(path, headers=stranger.headers)).status_code == 404
            assert (await a.get(path, headers=other_provider.headers)).status_code == 404
            assert (await a.get(path, headers=provider.headers)).status_code == 200
            assert (await a.get(path, headers=admin.headers)).status_code == 200
            assert (await a.get("/v1/bookings", headers=stranger.headers)).json()["total"] == 0
            assert (await a.get("/v1/bookings", headers=other_provider.headers)).json()["total"] == 0
            assert (await a.get("/v1/bookings", headers=provider.headers)).json()["total"] == 1


class TestRedisGoesAway:
    async def test_reads_stay_fresh_and_writes_keep_working_without_redis(
        self, cluster: Cluster, clients: tuple[httpx.AsyncClient, httpx.AsyncClient]
    ) -> None:
        a, b = clients
        user, provider, booking_id = await _booking(a)
        assert await _notes(b, user, booking_id) == "first"  # cached on b
        cluster.redis.stop()
        try:
            await _edit(a, user, booking_id, "no redis")
            # No event can reach b now; b notices the bus is gone and reads from the database instead.
            await _until_notes(b, user, booking_id, "no redis")
            assert (await book(a, user, provider)).status_code == 201
            assert (await b.get("/v1/bookings", headers=user.headers)).json()["total"] == 2
        finally:
            cluster.redis = RedisServer(cluster.redis.workdir, port=cluster.redis.port).start()
        # Back on the bus: b caches again, and changes made on a reach it as events.
        assert await _notes(b, user, booking_id) == "no redis"
        await asyncio.sleep(1.0)  # b's subscription reconnects (its retry is 0.5 s)
        await _edit(a, user, booking_id, "redis back")
        await _until_notes(b, user, booking_id, "redis back")
