"""ETags and ``If-Match``/``If-None-Match`` on bookings (design §6, RFC 9110 §13.1), on both backends."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Service, start_service
from tests.support.api import Account, account, book, future_slot

STALE = "/problems/precondition-failed"


async def _booked(api: httpx.AsyncClient) -> tuple[Account, dict[str, Any]]:
    user, provider = await account(api), await account(api, "provider")
    created = await book(api, user, provider, notes="first")
    assert created.status_code == 201, created.text
    assert created.headers["ETag"] == '"1"'
    assert created.json()["version"] == 1
    return user, created.json()


class TestETags:
    async def test_get_answers_the_version_and_304_while_the_client_holds_it(self, api: httpx.AsyncClient) -> None:
        user, booking = await _booked(api)
        path = f"/v1/bookings/{booking['id']}"

        fresh = await api.get(path, headers=user.headers)
        assert (fresh.status_code, fresh.headers["ETag"]) == (200, '"1"')
        for held in ('"1"', 'W/"1"', '"0", "1"', "*"):
            same = await api.get(path, headers={**user.headers, "If-None-Match": held})
            assert (same.status_code, same.content, same.headers["ETag"]) == (304, b"", '"1"'), held
        other = await api.get(path, headers={**user.headers, "If-None-Match": '"0"'})
        assert other.status_code == 200
        assert other.json() == booking

        await api.patch(path, json={"notes": "second"}, headers=user.headers)
        changed = await api.get(path, headers={**user.headers, "If-None-Match": '"1"'})
        assert (changed.status_code, changed.headers["ETag"], changed.json()["version"]) == (200, '"2"', 2)
        listed = await api.get("/v1/bookings", headers=user.headers)
        assert [item["version"] for item in listed.json()["items"]] == [2]

    async def test_a_stale_if_match_writes_nothing_and_names_the_current_version(self, api: httpx.AsyncClient) -> None:
        user, booking = await _booked(api)
        path = f"/v1/bookings/{booking['id']}"

        moved = await api.patch(path, json={"notes": "second"}, headers={**user.headers, "If-Match": '"1"'})
        assert (moved.status_code, moved.headers["ETag"], moved.json()["version"]) == (200, '"2"', 2)
        for stale in ('"1"', 'W/"2"', '"x"', "not a tag"):
            refused = await api.patch(path, json={"notes": "lost"}, headers={**user.headers, "If-Match": stale})
            assert refused.status_code == 412, (stale, refused.text)
            assert refused.headers["content-type"] == "application/problem+json"
            assert (refused.json()["type"], refused.headers["ETag"]) == (STALE, '"2"')
            cancel = await api.post(f"{path}/cancel", headers={**user.headers, "If-Match": stale})
            assert cancel.status_code == 412, (stale, cancel.text)
        now = await api.get(path, headers=user.headers)
        assert (now.json()["notes"], now.json()["status"], now.json()["version"]) == ("second", "confirmed", 2)

        for current in ('"2"', '"7", "2"', "*"):
            assert (await api.get(path, headers={**user.headers, "If-Match": current})).status_code == 200
        cancelled = await api.post(f"{path}/cancel", headers={**user.headers, "If-Match": '"2"'})
        assert (cancelled.status_code, cancelled.headers["ETag"]) == (200, '"3"')
        # Cancelling again is safe whatever the tag: the state already is what the request asks for.
        again = await api.post(f"{path}/cancel", headers={**user.headers, "If-Match": '"2"'})
        assert (again.status_code, again.json()["version"]) == (200, 3)

    async def test_two_editors_with_the_same_tag_one_wins_the_other_is_told(self, api: httpx.AsyncClient) -> None:
        user, booking = await _booked(api)
        path = f"/v1/bookings/{booking['id']}"

        async def edit(n: int) -> httpx.Response:
            return await api.patch(path, json={"notes": f"editor {n}"}, headers={**user.headers, "If-Match": '"1"'})

        answers = await asyncio.gather(*(edit(n) for n in range(8)))
        assert Counter(a.status_code for a in answers) == {200: 1, 412: 7}
        (winner,) = [a for a in answers if a.status_code == 200]
        final = (await api.get(path, headers=user.headers)).json()
        assert (final["version"], final["notes"]) == (2, winner.json()["notes"])
        assert all(a.headers["ETag"] == '"2"' for a in answers)


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Any:
    svc = start_service("sqlite", Path(tmp_path_factory.mktemp("strict")), BOOKINGS_REQUIRE_IF_MATCH="true")
    yield svc
    svc.server.stop()
    svc.db.drop()


class TestRequiredIfMatch:
    async def test_a_change_without_if_match_is_428_and_with_it_goes_through(self, strict: Service) -> None:
        async with httpx.AsyncClient(base_url=strict.url, timeout=30) as api:
            user, booking = await _booked(api)
            path = f"/v1/bookings/{booking['id']}"
            start, end = future_slot()
            for attempt in (
                api.patch(path, json={"startTime": start, "endTime": end}, headers=user.headers),
                api.post(f"{path}/cancel", headers=user.headers),
            ):
                refused = await attempt
                assert refused.status_code == 428, refused.text
                assert refused.json()["type"] == "/problems/precondition-required"
            unchanged = (await api.get(path, headers=user.headers)).json()
            assert unchanged == booking
            moved = await api.patch(
                path, json={"startTime": start, "endTime": end}, headers={**user.headers, "If-Match": '"1"'}
            )
            assert (moved.status_code, moved.json()["startTime"]) == (200, start)
