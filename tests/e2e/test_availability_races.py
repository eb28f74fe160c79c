"""Invariant 8 under real concurrency: racing bookings of a scheduled provider never pass its daily limit or its
buffers, on PostgreSQL across two API processes and on SQLite."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.conftest import Service, start_service
from tests.support.api import Account, account, iso
from tests.support.cluster import instances_on_postgres

RACERS = 30
DAY = datetime(2027, 9, 6, tzinfo=ZoneInfo("Europe/Berlin"))  # a Monday
EVERY_DAY = {day: [{"start": "08:00", "end": "20:00"}] for day in ("monday", "tuesday", "wednesday", "thursday",
                                                                     "friday", "saturday", "sunday")}  # fmt: skip


@pytest.fixture(scope="module")
def postgres_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    with instances_on_postgres(tmp_path_factory.mktemp("availability-races")) as pair:
        yield pair.urls


@pytest.fixture(scope="module")
def sqlite_one(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    service: Service = start_service("sqlite", tmp_path_factory.mktemp("availability-races-sqlite"))
    yield [service.url]
    service.server.stop()


@pytest.fixture(params=["postgresql", "sqlite"])
def urls(request: pytest.FixtureRequest) -> list[str]:
    fixture = "postgres_pair" if request.param == "postgresql" else "sqlite_one"
    found: list[str] = request.getfixturevalue(fixture)
    return found


async def _setup(url: str, **rules: object) -> tuple[Account, list[Account]]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as api:
        provider = await account(api, "provider")
        users = list(await asyncio.gather(*(account(api) for _ in range(RACERS))))
        body = {"timeZone": "Europe/Berlin", "weeklyHours": EVERY_DAY, "slotLengthMinutes": 60, **rules}
        put = await api.put(f"/v1/providers/{provider.id}/availability", json=body, headers=provider.headers)
        assert put.status_code == 201, put.text
    return provider, users


def _slot(hour: int, minute: int = 0) -> dict[str, str]:
    start = DAY.replace(hour=hour, minute=minute)
    return {"startTime": iso(start), "endTime": iso(start + timedelta(hours=1))}


async def _race(urls: list[str], provider: Account, users: list[Account], slots: list[dict[str, str]]) -> list[int]:
    clients = [httpx.AsyncClient(base_url=url, timeout=60) for url in urls]
    go = asyncio.Event()

    async def book(i: int) -> int:
        await go.wait()
        body = {"providerId": provider.id, **slots[i % len(slots)]}
        response = await clients[i % len(clients)].post("/v1/bookings", json=body, headers=users[i].headers)
        assert response.status_code in (201, 409), response.text
        return response.status_code

    try:
        tasks = [asyncio.create_task(book(i)) for i in range(RACERS)]
        await asyncio.sleep(0.05)
        go.set()
        async with asyncio.timeout(20):
            return list(await asyncio.gather(*tasks))
    finally:
        for client in clients:
            await client.aclose()


async def _confirmed(url: str, provider: Account) -> list[tuple[datetime, datetime]]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as api:
        page = (await api.get("/v1/bookings?limit=100", headers=provider.headers)).json()
    return sorted(
        (datetime.fromisoformat(b["startTime"]), datetime.fromisoformat(b["endTime"]))
        for b in page["items"]
        if b["status"] == "confirmed"
    )


class TestRacesOnAScheduledProvider:
    async def test_thirty_racing_for_the_last_slots_of_a_day_get_exactly_the_free_count(self, urls: list[str]) -> None:
        limit, taken = 4, 1
        provider, users = await _setup(urls[0], maxBookingsPerDay=limit)
        async with httpx.AsyncClient(base_url=urls[0], timeout=30) as api:
            first = await api.post(
                "/v1/bookings", json={"providerId": provider.id, **_slot(8)}, headers=users[0].headers
            )
            assert first.status_code == 201
        slots = [_slot(hour) for hour in range(9, 20)]  # 11 free slots of the day, 3 bookings left under the limit

        answers = Counter(await _race(urls, provider, users, slots))

        assert answers[201] == limit - taken, answers
        assert len(await _confirmed(urls[0], provider)) == limit

    async def test_thirty_racing_into_each_others_buffers_leave_no_two_that_meet(self, urls: list[str]) -> None:
        provider, users = await _setup(urls[0], slotIntervalMinutes=15, bufferAfterMinutes=30)
        slots = [_slot(9 + quarter // 4, 15 * (quarter % 4)) for quarter in range(12)]  # 09:00 to 11:45

        answers = Counter(await _race(urls, provider, users, slots))

        booked = await _confirmed(urls[0], provider)
        assert answers[201] == len(booked) >= 1, answers
        buffer = timedelta(minutes=30)
        for (_, end), (next_start, _) in itertools.pairwise(booked):
            assert end + buffer <= next_start, f"two bookings meet within the buffer: {booked}"
