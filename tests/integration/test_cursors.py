"""Cursor pages (design §6): keyset walks that never repeat or skip, opaque cursors bound to their query."""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest

from tests.support.api import Account, account, book, future_slot

INVALID = "/problems/invalid-cursor"


async def _walk(api: httpx.AsyncClient, who: Account, url: str, between: Any = None) -> list[dict[str, Any]]:
    """Follow ``Link: rel="next"`` from ``url`` to the end, checking each page's envelope on the way."""
    items: list[dict[str, Any]] = []
    first = True
    while url:
        answer = await api.get(url, headers=who.headers)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        if not first:
            assert (page["page"], page["total"]) == (None, None), "a cursor page is neither numbered nor counted"
        assert page["hasMore"] == (page["nextCursor"] is not None)
        link = answer.headers.get("Link")
        assert (link is None) == (page["nextCursor"] is None)
        items += page["items"]
        url = link.split(">", 1)[0].lstrip("<") if link else ""
        if link:
            assert link.endswith('; rel="next"')
        first = False
        if between is not None:
            await between()
    return items


class TestWalks:
    async def test_bookings_are_walked_in_the_windows_order(self, api: httpx.AsyncClient) -> None:
        user, provider = await account(api), await account(api, "provider")
        slots = [future_slot() for _ in range(5)]
        for slot in reversed(slots):
            assert (await book(api, user, provider, slot)).status_code == 201

        upcoming = await _walk(api, user, "/v1/bookings?type=upcoming&limit=2")
        assert [b["startTime"] for b in upcoming] == [start for start, _ in slots]
        everything = await _walk(api, user, "/v1/bookings?limit=3")
        assert [b["id"] for b in everything] == [b["id"] for b in upcoming]
        first = (await api.get("/v1/bookings?limit=5", headers=user.headers)).json()
        assert (first["hasMore"], first["nextCursor"], first["total"]) == (False, None, 5)

    async def test_every_other_list_walks_too(self, api: httpx.AsyncClient, admin: Account) -> None:
        providers = [await account(api, "provider") for _ in range(3)]
        walked = await _walk(api, admin, "/v1/providers?limit=1")
        assert {p.id for p in providers} <= {p["id"] for p in walked}
        assert len(walked) == len({p["id"] for p in walked})
        users = await _walk(api, admin, "/v1/users?limit=2")
        assert len(users) == len({u["id"] for u in users}) >= 4
        assert (await _walk(api, admin, "/v1/webhooks?limit=1")) == []
        assert (await _walk(api, admin, "/v1/admin/dead-letters?limit=1")) == []


class TestRefusedCursors:
    @pytest.fixture
    async def cursor(self, api: httpx.AsyncClient) -> tuple[Account, str]:
        user, provider = await account(api), await account(api, "provider")
        for _ in range(3):
            await book(api, user, provider)
        page = (await api.get("/v1/bookings?type=upcoming&limit=1", headers=user.headers)).json()
        return user, page["nextCursor"]

    async def _refused(self, api: httpx.AsyncClient, who: Account, url: str) -> None:
        answer = await api.get(url, headers=who.headers)
        assert answer.status_code == 400, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["type"] == INVALID

    async def test_a_tampered_cursor(self, api: httpx.AsyncClient, cursor: tuple[Account, str]) -> None:
        user, token = cursor
        payload, mac = token.split(".")
        flipped = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]
        for bad in (f"{flipped}.{mac}", f"{payload}.{mac[::-1]}", payload, "garbage", "a.b.c"):
            await self._refused(api, user, f"/v1/bookings?type=upcoming&cursor={bad}")

    async def test_a_cursor_of_another_query(self, api: httpx.AsyncClient, cursor: tuple[Account, str]) -> None:
        user, token = cursor
        await self._refused(api, user, f"/v1/bookings?type=past&cursor={token}")
        await self._refused(api, user, f"/v1/bookings?cursor={token}")
        await self._refused(api, user, f"/v1/providers?cursor={token}")

    async def test_a_cursor_with_a_page(self, api: httpx.AsyncClient, cursor: tuple[Account, str]) -> None:
        user, token = cursor
        await self._refused(api, user, f"/v1/bookings?type=upcoming&page=2&cursor={token}")
        walked = await api.get(f"/v1/bookings?type=upcoming&limit=5&cursor={token}", headers=user.headers)
        assert len(walked.json()["items"]) == 2, "the same cursor with another limit walks on"


class TestWalkingWhileOthersWrite:
    async def test_no_item_that_existed_for_the_whole_walk_repeats_or_goes_missing(
        self, api: httpx.AsyncClient, admin: Account
    ) -> None:
        users = [await account(api) for _ in range(3)]
        provider = await account(api, "provider")
        rng = random.Random(7)
        slots = [future_slot() for _ in range(40)]
        rng.shuffle(slots)
        before = [(await book(api, users[i % 3], provider, slot)).json()["id"] for i, slot in enumerate(slots[:24])]
        spare = iter(slots[24:])
        made: list[str] = []
        written = []

        async def write() -> None:
            """Between two pages: a booking made somewhere in the list, and one of those made so far cancelled."""
            slot = next(spare, None)
            if slot is not None:
                written.append(slot)
                made.append((await book(api, users[rng.randrange(3)], provider, slot)).json()["id"])
            if made and rng.random() < 0.5:
                victim = made.pop(rng.randrange(len(made)))
                await api.post(f"/v1/bookings/{victim}/cancel", headers=admin.headers)

        walked = await _walk(api, admin, "/v1/bookings?type=upcoming&limit=4", between=write)
        ids = [b["id"] for b in walked]

        assert len(ids) == len(set(ids)), "an item came twice"
        assert set(before) <= set(ids), "an item that existed for the whole walk was skipped"
        starts = [b["startTime"] for b in walked]
        assert starts == sorted(starts)
        assert len(written) >= 5, "the walk did race with writers"
