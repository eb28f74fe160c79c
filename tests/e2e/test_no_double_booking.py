"""Invariant 2 under real concurrency: many processes, many connections, one slot."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx
import psycopg
import pytest

from tests.conftest import Service, start_service
from tests.support.api import Account, account, book, future_slot, iso
from tests.support.cluster import instances_on_postgres
from tests.support.databases import ScratchDatabase

CONCURRENT = 50
# The fixture's database waits this long before looking for a deadlock (PostgreSQL's default is 1 s), and every
# race must end well before it: two writes that deadlock over a slot would hang a race for that long, where the
# provider lock makes the loser's answer as quick as the winner's.
DEADLOCK_TIMEOUT_S = 30
RACE_BOUND_S = 15


@pytest.fixture(scope="module")
def two_instances(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[str], ScratchDatabase]]:
    """Two API processes on one fresh PostgreSQL database, as behind a load balancer."""
    tmp = tmp_path_factory.mktemp("two-instances")
    with instances_on_postgres(tmp, database_settings=f"deadlock_timeout = '{DEADLOCK_TIMEOUT_S}s'") as pair:
        yield pair.urls, pair.db


async def _race(urls: list[str], users: list[Account], provider: Account, slots: list[tuple[str, str]]) -> Counter[int]:
    clients = [httpx.AsyncClient(base_url=url, timeout=60) for url in urls]
    start = asyncio.Event()

    async def create(i: int) -> int:
        await start.wait()
        begin, end = slots[i % len(slots)]
        body = {"providerId": provider.id, "startTime": begin, "endTime": end}
        response = await clients[i % len(clients)].post("/v1/bookings", json=body, headers=users[i].headers)
        return response.status_code

    try:
        tasks = [asyncio.create_task(create(i)) for i in range(len(users))]
        await asyncio.sleep(0.05)
        start.set()
        async with asyncio.timeout(RACE_BOUND_S):
            return Counter(await asyncio.gather(*tasks))
    finally:
        for client in clients:
            await client.aclose()


async def _people(url: str, count: int) -> tuple[list[Account], Account]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        provider = await account(client, "provider")
        users = list(await asyncio.gather(*(account(client) for _ in range(count))))
    return users, provider


class TestConflictingCreatesOnPostgres:
    async def test_fifty_racing_creates_across_two_instances_give_one_booking(
        self, two_instances: tuple[list[str], ScratchDatabase]
    ) -> None:
        urls, db = two_instances
        users, provider = await _people(urls[0], CONCURRENT)
        statuses = await _race(urls, users, provider, [future_slot()])
        assert statuses == Counter({201: 1, 409: CONCURRENT - 1})
        assert db.count_bookings(provider.id) == 1

    async def test_fifty_racing_overlapping_but_unequal_slots_give_one_booking(
        self, two_instances: tuple[list[str], ScratchDatabase]
    ) -> None:
        urls, db = two_instances
        users, provider = await _people(urls[1], CONCURRENT)
        start, _ = future_slot(hours=3)
        begin = datetime.fromisoformat(start)
        # Every request overlaps every other one, without any two being equal.
        slots = [(iso(begin + timedelta(minutes=i)), iso(begin + timedelta(hours=1, minutes=i))) for i in range(10)]
        statuses = await _race(urls, users, provider, slots)
        assert statuses[201] == 1
        assert statuses[409] == CONCURRENT - 1
        assert db.count_bookings(provider.id) == 1

    async def test_fifty_racing_valid_creates_all_succeed(
        self, two_instances: tuple[list[str], ScratchDatabase]
    ) -> None:
        urls, db = two_instances
        users, provider = await _people(urls[0], CONCURRENT)
        statuses = await _race(urls, users, provider, [future_slot() for _ in range(CONCURRENT)])
        assert statuses == Counter({201: CONCURRENT})
        assert db.count_bookings(provider.id) == CONCURRENT

    async def test_creates_and_reschedules_racing_into_one_slot_give_one_booking_there(
        self, two_instances: tuple[list[str], ScratchDatabase]
    ) -> None:
        """Half the racers book the slot, half move a booking of theirs (same provider) into it."""
        urls, db = two_instances
        users, provider = await _people(urls[1], CONCURRENT)
        movers = users[: CONCURRENT // 2]
        async with httpx.AsyncClient(base_url=urls[1], timeout=30) as client:
            owned = [await book(client, user, provider) for user in movers]
        assert all(r.status_code == 201 for r in owned)
        target = future_slot()
        clients = [httpx.AsyncClient(base_url=url, timeout=60) for url in urls]
        start = asyncio.Event()

        async def race(i: int) -> int:
            await start.wait()
            client, user = clients[i % 2], users[i]
            body = {"startTime": target[0], "endTime": target[1]}
            if i < len(movers):
                response = await client.patch(f"/v1/bookings/{owned[i].json()['id']}", json=body, headers=user.headers)
            else:
                response = await client.post(
                    "/v1/bookings", json=body | {"providerId": provider.id}, headers=user.headers
                )
            return response.status_code

        try:
            tasks = [asyncio.create_task(race(i)) for i in range(CONCURRENT)]
            await asyncio.sleep(0.05)
            start.set()
            async with asyncio.timeout(RACE_BOUND_S):
                statuses = Counter(await asyncio.gather(*tasks))
        finally:
            for client in clients:
                await client.aclose()
        assert statuses[200] + statuses[201] == 1
        assert statuses[409] == CONCURRENT - 1
        assert db.count_bookings(provider.id) == len(movers) + statuses[201]
        with psycopg.connect(db.url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM bookings WHERE provider_id = %s AND start_time = %s",
                (provider.id, datetime.fromisoformat(target[0])),
            ).fetchone()
        assert row == (1,)


@pytest.fixture(scope="module")
def sqlite_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The embedded mode: one process on a SQLite file."""
    service = start_service("sqlite", tmp_path_factory.mktemp("sqlite-race"))
    yield service
    service.server.stop()


class TestConflictingCreatesOnSqlite:
    async def test_fifty_racing_creates_give_one_booking(self, sqlite_service: Service) -> None:
        users, provider = await _people(sqlite_service.url, CONCURRENT)
        statuses = await _race([sqlite_service.url], users, provider, [future_slot()])
        assert statuses == Counter({201: 1, 409: CONCURRENT - 1})
        assert sqlite_service.db.count_bookings(provider.id) == 1

    async def test_fifty_racing_valid_creates_all_succeed(self, sqlite_service: Service) -> None:
        users, provider = await _people(sqlite_service.url, CONCURRENT)
        statuses = await _race([sqlite_service.url], users, provider, [future_slot() for _ in range(CONCURRENT)])
        assert statuses == Counter({201: CONCURRENT})
        assert sqlite_service.db.count_bookings(provider.id) == CONCURRENT
