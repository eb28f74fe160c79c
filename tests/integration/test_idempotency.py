"""``Idempotency-Key`` (design invariant 9): a retried write replays its first success, on both backends."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from bookings.db import Database
from bookings.idempotency import repository as idempotency
from bookings.idempotency.keys import IdempotencyKey, Outcome
from bookings.jobs.wakeup import LocalWakeup
from bookings.jobs.worker import Worker
from bookings.ops.metrics import Metrics
from tests.support.api import Account, account, future_slot
from tests.support.clock import SettableClock

REPLAYED = "Idempotent-Replayed"


def _key() -> str:
    return f"key-{secrets.token_hex(8)}"


def _create(provider: Account, slot: tuple[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    start, end = slot or future_slot()
    return {"providerId": provider.id, "startTime": start, "endTime": end, **extra}


async def _count(api: httpx.AsyncClient, who: Account) -> int:
    listed = await api.get("/v1/bookings", headers=who.headers, params={"limit": 100})
    total: int = listed.json()["total"]
    return total


class TestCreate:
    async def test_twenty_parallel_creates_with_one_key_book_once(self, api: httpx.AsyncClient) -> None:
        user, provider = await account(api), await account(api, "provider")
        body, headers = _create(provider), {**user.headers, "Idempotency-Key": _key()}

        answers = await asyncio.gather(*(api.post("/v1/bookings", json=body, headers=headers) for _ in range(20)))

        statuses = Counter(a.status_code for a in answers)
        assert set(statuses) <= {201, 409}, [a.text for a in answers]
        assert statuses[201] >= 1
        created = [a for a in answers if a.status_code == 201]
        assert len({a.json()["id"] for a in created}) == 1
        assert sum(REPLAYED not in a.headers for a in created) == 1, "exactly one answer is the original"
        assert all(a.headers[REPLAYED] == "true" for a in created if REPLAYED in a.headers)
        for busy in (a for a in answers if a.status_code == 409):
            assert busy.json()["type"] == "/problems/idempotency-key-in-use", busy.text
            assert int(busy.headers["Retry-After"]) >= 1
        assert await _count(api, user) == 1

    async def test_a_replay_is_the_original_answer_even_after_the_booking_changed(self, api: httpx.AsyncClient) -> None:
        user, provider = await account(api), await account(api, "provider")
        body, headers = _create(provider, notes="original"), {**user.headers, "Idempotency-Key": _key()}
        first = await api.post("/v1/bookings", json=body, headers=headers)
        assert first.status_code == 201
        assert REPLAYED not in first.headers
        start, end = future_slot()
        moved = await api.patch(
            first.headers["Location"], json={"startTime": start, "endTime": end}, headers=user.headers
        )
        assert moved.status_code == 200

        again = await api.post("/v1/bookings", json=body, headers=headers)

        assert (again.status_code, again.headers[REPLAYED]) == (201, "true")
        assert again.json() == first.json()
        assert (again.headers["Location"], again.headers["ETag"]) == (first.headers["Location"], '"1"')
        assert await _count(api, user) == 1
        current = await api.get(first.headers["Location"], headers=user.headers)
        assert (current.json()["startTime"], current.json()["version"]) == (start, 2), "the replay changed nothing"

    async def test_the_same_key_with_another_body_is_refused(self, api: httpx.AsyncClient) -> None:
        user, provider = await account(api), await account(api, "provider")
        headers = {**user.headers, "Idempotency-Key": _key()}
        assert (await api.post("/v1/bookings", json=_create(provider), headers=headers)).status_code == 201

        reused = await api.post("/v1/bookings", json=_create(provider), headers=headers)

        assert reused.status_code == 422, reused.text
        assert reused.json()["type"] == "/problems/idempotency-key-reused"
        assert await _count(api, user) == 1

    async def test_the_body_is_compared_as_json_not_as_bytes(self, api: httpx.AsyncClient) -> None:
        user, provider = await account(api), await account(api, "provider")
        body, headers = _create(provider, notes="same"), {**user.headers, "Idempotency-Key": _key()}
        first = await api.post("/v1/bookings", json=body, headers=headers)
        reordered = dict(reversed(list(body.items())))
        spaced = httpx.Request("POST", "/", json=reordered).content.replace(b",", b", ")

        again = await api.post("/v1/bookings", content=spaced, headers={**headers, "Content-Type": "application/json"})

        assert (again.status_code, again.json()["id"]) == (201, first.json()["id"])
        assert again.headers[REPLAYED] == "true"

    async def test_a_key_belongs_to_its_caller(self, api: httpx.AsyncClient) -> None:
        alice, bob, provider = await account(api), await account(api), await account(api, "provider")
        key = _key()
        mine = await api.post("/v1/bookings", json=_create(provider), headers={**alice.headers, "Idempotency-Key": key})
        theirs = await api.post("/v1/bookings", json=_create(provider), headers={**bob.headers, "Idempotency-Key": key})

        assert (mine.status_code, theirs.status_code) == (201, 201), theirs.text
        assert REPLAYED not in theirs.headers
        assert mine.json()["id"] != theirs.json()["id"]
        assert (await _count(api, alice), await _count(api, bob)) == (1, 1)

    async def test_a_failed_request_stores_nothing_so_its_retry_runs_again(self, api: httpx.AsyncClient) -> None:
        user, rival, provider = await account(api), await account(api), await account(api, "provider")
        slot = future_slot()
        taken = await api.post("/v1/bookings", json=_create(provider, slot), headers=rival.headers)
        body, headers = _create(provider, slot), {**user.headers, "Idempotency-Key": _key()}

        lost = await api.post("/v1/bookings", json=body, headers=headers)
        assert (lost.status_code, lost.json()["type"]) == (409, "/problems/slot-taken")
        await api.post(f"{taken.headers['Location']}/cancel", headers=rival.headers)
        retried = await api.post("/v1/bookings", json=body, headers=headers)

        assert retried.status_code == 201, retried.text
        assert REPLAYED not in retried.headers

    @pytest.mark.parametrize("bad", ["", "has space", "x" * 256, "caf\u00e9", "tab\there"])
    async def test_a_malformed_key_is_400(self, api: httpx.AsyncClient, bad: str) -> None:
        user, provider = await account(api), await account(api, "provider")
        headers = [*user.headers.items(), ("Idempotency-Key", bad.encode("latin-1"))]

        refused = await api.post("/v1/bookings", json=_create(provider), headers=headers)

        assert refused.status_code == 400, refused.text
        assert refused.json()["type"] == "/problems/invalid-idempotency-key"
        assert await _count(api, user) == 0


class TestChanges:
    async def test_a_reschedule_and_a_cancel_replay_and_apply_once(self, api: httpx.AsyncClient) -> None:
        user, provider = await account(api), await account(api, "provider")
        created = await api.post("/v1/bookings", json=_create(provider), headers=user.headers)
        path = created.headers["Location"]
        start, end = future_slot()
        move = {"startTime": start, "endTime": end}
        move_headers = {**user.headers, "Idempotency-Key": _key(), "If-Match": '"1"'}

        first = await api.patch(path, json=move, headers=move_headers)
        again = await api.patch(path, json=move, headers=move_headers)
        assert (first.status_code, again.status_code, again.headers[REPLAYED]) == (200, 200, "true")
        assert again.json() == first.json()
        assert first.json()["version"] == 2
        other_tag = await api.patch(path, json=move, headers={**move_headers, "If-Match": '"2"'})
        assert other_tag.json()["type"] == "/problems/idempotency-key-reused", "If-Match is part of the request"

        cancel_headers = {**user.headers, "Idempotency-Key": _key()}
        cancelled = await api.post(f"{path}/cancel", json={"reason": "ill"}, headers=cancel_headers)
        replayed = await api.post(f"{path}/cancel", json={"reason": "ill"}, headers=cancel_headers)
        assert (cancelled.status_code, replayed.status_code, replayed.headers[REPLAYED]) == (200, 200, "true")
        assert replayed.json() == cancelled.json()
        final = (await api.get(path, headers=user.headers)).json()
        assert (final["version"], final["status"], final["cancelReason"]) == (3, "cancelled", "ill")


NOW = datetime(2031, 1, 1, 12, tzinfo=UTC)


class TestPruning:
    async def test_the_worker_prunes_keys_past_their_retention(self, db: Database) -> None:
        caller = uuid.uuid4()
        keys = {age: IdempotencyKey(caller, f"k{age}", "f") for age in (1, 30)}
        async with db.write_sessions() as session, session.begin():
            for age, key in keys.items():
                idempotency.remember(session, key, Outcome(201, b"{}", {}), NOW - timedelta(hours=age))
        worker = Worker(db, LocalWakeup(), Metrics(), SettableClock(NOW))
        keep = timedelta(hours=24)
        worker.prune_also(lambda session, now: idempotency.prune(session, now - keep))

        await worker.prune(force=True)

        async with db.write_sessions() as session, session.begin():
            assert await idempotency.claim(session, keys[1]) is not None
            assert await idempotency.claim(session, keys[30]) is None
