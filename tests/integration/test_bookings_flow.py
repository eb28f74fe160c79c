"""The everyday path: create, get, list, reschedule, cancel."""

from __future__ import annotations

import httpx

from tests.support.api import account, book, future_slot


class TestCreateBooking:
    async def test_returns_201_with_location_and_the_booking(self, api: httpx.AsyncClient) -> None:
        user, provider = await account(api), await account(api, "provider")
        start, end = future_slot()
        response = await book(api, user, provider, (start, end), notes="first visit")
        assert response.status_code == 201, response.text
        body = response.json()
        assert response.headers["location"] == f"/v1/bookings/{body['id']}"
        assert body["userId"] == user.id
        assert body["providerId"] == provider.id
        assert body["startTime"] == start
        assert body["endTime"] == end
        assert body["status"] == "confirmed"
        assert body["notes"] == "first visit"

    async def test_overlapping_slot_is_409_and_back_to_back_is_fine(self, api: httpx.AsyncClient) -> None:
        user, provider = await account(api), await account(api, "provider")
        assert (await book(api, user, provider, ("2031-01-01T10:00:00Z", "2031-01-01T11:00:00Z"))).status_code == 201
        clash = await book(api, user, provider, ("2031-01-01T10:30:00+00:00", "2031-01-01T11:30:00+00:00"))
        assert clash.status_code == 409
        assert clash.headers["content-type"] == "application/problem+json"
        assert clash.json()["type"] == "/problems/slot-taken"
        before = await book(api, user, provider, ("2031-01-01T09:00:00Z", "2031-01-01T10:00:00Z"))
        after = await book(api, user, provider, ("2031-01-01T12:00:00+01:00", "2031-01-01T13:00:00+01:00"))
        assert (before.status_code, after.status_code) == (201, 201)

    async def test_other_providers_are_independent(self, api: httpx.AsyncClient) -> None:
        user = await account(api)
        first, second = await account(api, "provider"), await account(api, "provider")
        slot = future_slot()
        assert (await book(api, user, first, slot)).status_code == 201
        assert (await book(api, user, second, slot)).status_code == 201

    async def test_a_cancelled_booking_frees_its_slot(self, api: httpx.AsyncClient) -> None:
        user, provider = await account(api), await account(api, "provider")
        slot = future_slot()
        booking = (await book(api, user, provider, slot)).json()
        await api.post(f"/v1/bookings/{booking['id']}/cancel", headers=user.headers)
        assert (await book(api, user, provider, slot)).status_code == 201

    async def test_provider_and_admin_cannot_create(self, api: httpx.AsyncClient, admin: object) -> None:
        provider = await account(api, "provider")
        assert (await book(api, provider, provider)).status_code == 403


class TestListBookings:
    async def test_upcoming_is_earliest_first_and_paginated(self, api: httpx.AsyncClient) -> None:
        user, provider = await account(api), await account(api, "provider")
        slots = [future_slot() for _ in range(5)]
        for slot in reversed(slots):
            assert (await book(api, user, provider, slot)).status_code == 201
        page1 = (await api.get("/v1/bookings?type=upcoming&limit=2", headers=user.headers)).json()
        page3 = (await api.get("/v1/bookings?type=upcoming&limit=2&page=3", headers=user.headers)).json()
        assert page1["total"] == 5
        assert [b["startTime"] for b in page1["items"]] == [slots[0][0], slots[1][0]]
        assert [b["startTime"] for b in page3["items"]] == [slots[4][0]]
        assert (page3["page"], page3["limit"]) == (3, 2)

    async def test_past_is_empty_for_new_bookings(self, api: httpx.AsyncClient) -> None:
        user, provider = await account(api), await account(api, "provider")
        await book(api, user, provider)
        past = (await api.get("/v1/bookings?type=past", headers=user.headers)).json()
        assert past == {"items": [], "page": 1, "limit": 20, "total": 0, "nextCursor": None, "hasMore": False}


class TestRescheduleAndCancel:
    async def test_reschedule_moves_the_booking(self, api: httpx.AsyncClient) -> None:
        user, provider = await account(api), await account(api, "provider")
        booking = (await book(api, user, provider)).json()
        start, end = future_slot()
        moved = await api.patch(
            f"/v1/bookings/{booking['id']}", json={"startTime": start, "endTime": end}, headers=user.headers
        )
        assert moved.status_code == 200, moved.text
        assert (moved.json()["startTime"], moved.json()["endTime"]) == (start, end)
        fetched = (await api.get(f"/v1/bookings/{booking['id']}", headers=user.headers)).json()
        assert fetched["startTime"] == start

    async def test_reschedule_onto_a_taken_slot_is_409_and_changes_nothing(self, api: httpx.AsyncClient) -> None:
        user, provider = await account(api), await account(api, "provider")
        taken = future_slot()
        await book(api, user, provider, taken)
        mine = (await book(api, user, provider)).json()
        response = await api.patch(
            f"/v1/bookings/{mine['id']}",
            json={"startTime": taken[0], "endTime": taken[1]},
            headers=user.headers,
        )
        assert response.status_code == 409
        assert (await api.get(f"/v1/bookings/{mine['id']}", headers=user.headers)).json() == mine

    async def test_provider_may_cancel_but_not_reschedule(self, api: httpx.AsyncClient) -> None:
        user, provider = await account(api), await account(api, "provider")
        booking = (await book(api, user, provider)).json()
        start, end = future_slot()
        patch = await api.patch(
            f"/v1/bookings/{booking['id']}",
            json={"startTime": start, "endTime": end},
            headers=provider.headers,
        )
        assert patch.status_code == 403
        cancel = await api.post(
            f"/v1/bookings/{booking['id']}/cancel", json={"reason": "closed"}, headers=provider.headers
        )
        assert cancel.status_code == 200
        assert (cancel.json()["status"], cancel.json()["cancelReason"]) == ("cancelled", "closed")

    async def test_cancel_twice_returns_the_cancelled_booking(self, api: httpx.AsyncClient) -> None:
        user, provider = await account(api), await account(api, "provider")
        booking = (await book(api, user, provider)).json()
        first = await api.post(f"/v1/bookings/{booking['id']}/cancel", headers=user.headers)
        second = await api.post(f"/v1/bookings/{booking['id']}/cancel", headers=user.headers)
        assert first.status_code == second.status_code == 200
        assert first.json() == second.json()

    async def test_a_cancelled_booking_cannot_be_rescheduled(self, api: httpx.AsyncClient) -> None:
        user, provider = await account(api), await account(api, "provider")
        booking = (await book(api, user, provider)).json()
        await api.post(f"/v1/bookings/{booking['id']}/cancel", headers=user.headers)
        response = await api.patch(f"/v1/bookings/{booking['id']}", json={"notes": "x"}, headers=user.headers)
        assert response.status_code == 409
