"""Invariant 9 across processes: duplicates of one keyed write, sent at once to two API instances on PostgreSQL."""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from tests.support.api import account, future_slot
from tests.support.cluster import instances_on_postgres
from tests.support.databases import ScratchDatabase

DUPLICATES = 20
REPLAYED = "Idempotent-Replayed"


@pytest.fixture(scope="module")
def two_instances(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[str], ScratchDatabase]]:
    with instances_on_postgres(tmp_path_factory.mktemp("idempotent")) as pair:
        yield pair.urls, pair.db


async def _all_at_once(
    clients: list[httpx.AsyncClient], method: str, path: str, **kwargs: object
) -> list[httpx.Response]:
    start = asyncio.Event()

    async def send(i: int) -> httpx.Response:
        await start.wait()
        return await clients[i % len(clients)].request(method, path, **kwargs)  # type: ignore[arg-type]

    tasks = [asyncio.create_task(send(i)) for i in range(DUPLICATES)]
    await asyncio.sleep(0.05)
    start.set()
    async with asyncio.timeout(30):
        return list(await asyncio.gather(*tasks))


def _one_applied(answers: list[httpx.Response], success: int) -> httpx.Response:
    """Exactly one original success; every other answer its replay or ``409`` key-in-use."""
    assert set(Counter(a.status_code for a in answers)) <= {success, 409}, [a.text for a in answers]
    successes = [a for a in answers if a.status_code == success]
    originals = [a for a in successes if REPLAYED not in a.headers]
    assert len(originals) == 1, [a.headers.get(REPLAYED) for a in successes]
    assert all(a.json() == originals[0].json() for a in successes)
    for busy in (a for a in answers if a.status_code == 409):
        assert busy.json()["type"] == "/problems/idempotency-key-in-use"
        assert "Retry-After" in busy.headers
    return originals[0]


class TestDuplicatesAcrossInstances:
    async def test_one_keyed_create_sent_twenty_times_books_once(
        self, two_instances: tuple[list[str], ScratchDatabase]
    ) -> None:
        urls, db = two_instances
        clients = [httpx.AsyncClient(base_url=url, timeout=60) for url in urls]
        try:
            user, provider = await account(clients[0]), await account(clients[0], "provider")
            start, end = future_slot()
            body = {"providerId": provider.id, "startTime": start, "endTime": end}
            headers = {**user.headers, "Idempotency-Key": secrets.token_urlsafe(16)}

            answers = await _all_at_once(clients, "POST", "/v1/bookings", json=body, headers=headers)

            original = _one_applied(answers, 201)
            assert db.count_bookings() == 1
            late = await clients[1].post("/v1/bookings", json=body, headers=headers)
            assert (late.status_code, late.headers[REPLAYED], late.json()) == (201, "true", original.json())
        finally:
            for client in clients:
                await client.aclose()

    async def test_one_keyed_reschedule_sent_twenty_times_applies_once(
        self, two_instances: tuple[list[str], ScratchDatabase]
    ) -> None:
        urls, _db = two_instances
        clients = [httpx.AsyncClient(base_url=url, timeout=60) for url in urls]
        try:
            user, provider = await account(clients[0]), await account(clients[0], "provider")
            start, end = future_slot()
            created = await clients[0].post(
                "/v1/bookings",
                json={"providerId": provider.id, "startTime": start, "endTime": end},
                headers=user.headers,
            )
            path = created.headers["Location"]
            new_start, new_end = future_slot()
            headers = {**user.headers, "Idempotency-Key": secrets.token_urlsafe(16)}

            answers = await _all_at_once(
                clients, "PATCH", path, json={"startTime": new_start, "endTime": new_end}, headers=headers
            )

            original = _one_applied(answers, 200)
            assert original.json()["version"] == 2
            current = await clients[1].get(path, headers=user.headers)
            assert (current.json()["version"], current.json()["startTime"]) == (2, new_start)
        finally:
            for client in clients:
                await client.aclose()
