"""Availability's API (design §6): who may set it, what it accepts, and the bookings it lets through.

Dates are in 2027-2028, ahead of the real clock: a provider's notice and horizon are measured from now.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.support.api import Account, account, iso

BERLIN = ZoneInfo("Europe/Berlin")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONDAY = "2027-06-07"  # CEST, +02:00


def schedule(**changes: Any) -> dict[str, Any]:
    return {
        "timeZone": "Europe/Berlin",
        "weeklyHours": {"monday": [{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "17:00"}]},
        "slotLengthMinutes": 60,
        **changes,
    }


def local(day: str, hhmm: str, minutes: int = 60) -> dict[str, str]:
    start = datetime.fromisoformat(f"{day}T{hhmm}").replace(tzinfo=BERLIN)
    return {"startTime": iso(start), "endTime": iso(start + timedelta(minutes=minutes))}


async def _scheduled(api: httpx.AsyncClient, **changes: Any) -> tuple[Account, Account]:
    provider, user = await account(api, "provider"), await account(api)
    path = f"/v1/providers/{provider.id}/availability"
    created = await api.put(path, json=schedule(**changes), headers=provider.headers)
    assert created.status_code == 201, created.text
    return provider, user


async def _book(api: httpx.AsyncClient, user: Account, provider: Account, times: dict[str, str]) -> httpx.Response:
    return await api.post("/v1/bookings", json={"providerId": provider.id, **times}, headers=user.headers)


def _problem(response: httpx.Response, status: int, kind: str, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == f"/problems/{kind}", problem
    if code is not None:
        assert code in {error["type"] for error in problem["errors"]}, problem


class TestSchedule:
    async def test_the_provider_sets_it_once_then_replaces_it_and_everyone_signed_in_reads_it(
        self, api: httpx.AsyncClient, admin: Account
    ) -> None:
        provider, user = await account(api, "provider"), await account(api)
        path = f"/v1/providers/{provider.id}/availability"
        _problem(await api.get(path, headers=user.headers), 404, "availability-not-found")

        first = await api.put(path, json=schedule(), headers=provider.headers)
        assert (first.status_code, first.headers["ETag"]) == (201, '"1"')
        body = first.json()
        assert body["weeklyHours"]["sunday"] == [], "a weekday left out is closed"
        assert (body["slotLengthMinutes"], body["slotIntervalMinutes"]) == (60, 60), "the step defaults to the length"
        assert (body["bufferBeforeMinutes"], body["minNoticeMinutes"], body["maxHorizonDays"]) == (0, 0, None)
        assert (body["providerId"], body["version"]) == (provider.id, 1)

        read = await api.get(path, headers=user.headers)
        assert (read.status_code, read.headers["ETag"], read.json()) == (200, '"1"', body)
        again = await api.put(path, json=schedule(slotLengthMinutes=30), headers=admin.headers)
        assert (again.status_code, again.headers["ETag"], again.json()["slotIntervalMinutes"]) == (200, '"2"', 30)
        stale = await api.put(path, json=schedule(), headers={**provider.headers, "If-Match": '"1"'})
        _problem(stale, 412, "precondition-failed")
        assert stale.headers["ETag"] == '"2"'
        assert (await api.get(path, headers=user.headers)).json()["slotLengthMinutes"] == 30

    async def test_only_that_provider_or_an_admin_may_change_it(self, api: httpx.AsyncClient) -> None:
        provider, other, user = await account(api, "provider"), await account(api, "provider"), await account(api)
        path = f"/v1/providers/{provider.id}/availability"
        for stranger in (user, other):
            _problem(await api.put(path, json=schedule(), headers=stranger.headers), 403, "not-permitted")
            _problem(
                await api.put(f"{path}/overrides/2027-06-07", json={"intervals": []}, headers=stranger.headers),
                403,
                "not-permitted",
            )
        _problem(
            await api.get(f"/v1/providers/{user.id}/availability", headers=user.headers), 404, "provider-not-found"
        )
        _problem(
            await api.get(f"/v1/providers/{user.id}/slots?from={MONDAY}&to={MONDAY}", headers=user.headers),
            404,
            "provider-not-found",
        )
        assert (await api.get(path)).status_code == 401

    @pytest.mark.parametrize(
        ("changes", "field", "code"),
        [
            ({"timeZone": "+02:00"}, "timeZone", "time_zone"),
            ({"timeZone": "Mars/Olympus"}, "timeZone", "time_zone"),
            ({"weeklyHours": {"monday": [{"start": "9:00", "end": "12:00"}]}}, "weeklyHours.monday.0.start", None),
            ({"weeklyHours": {"monday": [{"start": "24:00", "end": "24:00"}]}}, "weeklyHours.monday.0", None),
            ({"weeklyHours": {"monday": [{"start": "12:00", "end": "09:00"}]}}, "weeklyHours.monday.0", None),
            (
                {"weeklyHours": {"monday": [{"start": "09:00", "end": "12:00"}, {"start": "11:00", "end": "13:00"}]}},
                "weeklyHours.monday",
                "intervals_overlap",
            ),
            (
                {"weeklyHours": {"monday": [{"start": f"{h:02d}:00", "end": f"{h:02d}:30"} for h in range(13)]}},
                "weeklyHours.monday",
                None,
            ),
            ({"weeklyHours": {"someday": []}}, "weeklyHours.someday", "extra_forbidden"),
            ({"slotLengthMinutes": 4}, "slotLengthMinutes", "greater_than_equal"),
            ({"slotLengthMinutes": 1441}, "slotLengthMinutes", "less_than_equal"),
            ({"bufferAfterMinutes": 721}, "bufferAfterMinutes", "less_than_equal"),
            ({"minNoticeMinutes": 525_601}, "minNoticeMinutes", "less_than_equal"),
            ({"maxHorizonDays": 0}, "maxHorizonDays", "greater_than_equal"),
            ({"maxBookingsPerDay": 1001}, "maxBookingsPerDay", "less_than_equal"),
        ],
    )
    async def test_a_bad_schedule_is_422_and_changes_nothing(
        self, api: httpx.AsyncClient, changes: dict[str, Any], field: str, code: str | None
    ) -> None:
        provider = await account(api, "provider")
        path = f"/v1/providers/{provider.id}/availability"
        refused = await api.put(path, json=schedule(**changes), headers=provider.headers)
        _problem(refused, 422, "invalid-input", code)
        assert field in {error["field"] for error in refused.json()["errors"]}, refused.json()
        _problem(await api.get(path, headers=provider.headers), 404, "availability-not-found")

    async def test_touching_intervals_and_a_night_shift_as_two_are_fine(self, api: httpx.AsyncClient) -> None:
        hours = {
            "monday": [{"start": "09:00", "end": "12:00"}, {"start": "12:00", "end": "13:00"}],
            "tuesday": [{"start": "22:00", "end": "24:00"}],
            "wednesday": [{"start": "00:00", "end": "06:00"}],
        }
        provider = await account(api, "provider")
        put = await api.put(
            f"/v1/providers/{provider.id}/availability", json=schedule(weeklyHours=hours), headers=provider.headers
        )
        assert put.status_code == 201, put.text


class TestOverrides:
    async def test_an_override_closes_or_reshapes_a_date_and_can_be_removed(self, api: httpx.AsyncClient) -> None:
        provider, user = await _scheduled(api)
        base = f"/v1/providers/{provider.id}"
        closed = await api.put(
            f"{base}/availability/overrides/{MONDAY}", json={"intervals": []}, headers=provider.headers
        )
        assert (closed.status_code, closed.json()["intervals"]) == (201, [])
        slots = await api.get(f"{base}/slots?from={MONDAY}&to={MONDAY}", headers=user.headers)
        assert slots.json()["slots"] == []
        _problem(await _book(api, user, provider, local(MONDAY, "09:00")), 422, "outside-availability", "outside_hours")

        half = {"intervals": [{"start": "10:00", "end": "12:00"}], "note": "half day"}
        replaced = await api.put(f"{base}/availability/overrides/{MONDAY}", json=half, headers=provider.headers)
        assert (replaced.status_code, replaced.json()["note"]) == (200, "half day")
        found = (await api.get(f"{base}/slots?from={MONDAY}&to={MONDAY}", headers=user.headers)).json()["slots"]
        assert [s["startTime"] for s in found] == ["2027-06-07T08:00:00Z", "2027-06-07T09:00:00Z"]
        listed = (await api.get(f"{base}/availability/overrides?from={MONDAY}", headers=user.headers)).json()
        assert [(o["date"], o["note"]) for o in listed["items"]] == [(MONDAY, "half day")]

        removed = await api.delete(f"{base}/availability/overrides/{MONDAY}", headers=provider.headers)
        assert removed.status_code == 204
        found = (await api.get(f"{base}/slots?from={MONDAY}&to={MONDAY}", headers=user.headers)).json()["slots"]
        assert len(found) == 7
        _problem(await api.delete(f"{base}/availability/overrides/{MONDAY}", headers=provider.headers), 404,
                 "availability-not-found")  # fmt: skip

    @pytest.mark.parametrize(
        ("day", "code"), [("2027-6-7", "date_format"), ("2020-01-06", "date_in_past"), ("2099-01-05", "date_too_far")]
    )
    async def test_a_bad_date_is_422(self, api: httpx.AsyncClient, day: str, code: str) -> None:
        provider, _ = await _scheduled(api)
        path = f"/v1/providers/{provider.id}/availability/overrides/{day}"
        _problem(await api.put(path, json={"intervals": []}, headers=provider.headers), 422, "invalid-input", code)


class TestSearch:
    @pytest.mark.parametrize(
        ("query", "code"),
        [
            ("from=2027-06-14&to=2027-06-07", "window_reversed"),
            ("from=2027-06-07", "missing"),
            ("from=2027-06-01&to=2027-07-02", "window_too_long"),
            ("from=2027-06-07T09:00:00&to=2027-06-07T12:00:00", "rfc3339_datetime"),
            ("from=2027-06-07&to=2027-06-08T00:00:00Z", "rfc3339_datetime"),
            ("from=2027-06-07T12:00:00Z&to=2027-06-07T09:00:00Z", "window_reversed"),
            ("from=2027-06-07&to=2027-06-07&timeZone=%2B02:00", "time_zone"),
        ],
    )
    async def test_a_bad_window_is_422(self, api: httpx.AsyncClient, query: str, code: str) -> None:
        provider, user = await _scheduled(api)
        refused = await api.get(f"/v1/providers/{provider.id}/slots?{query}", headers=user.headers)
        _problem(refused, 422, "invalid-input", code)

    async def test_a_booked_slot_and_its_buffers_are_not_offered(self, api: httpx.AsyncClient) -> None:
        provider, user = await _scheduled(api, bufferBeforeMinutes=60)
        assert (await _book(api, user, provider, local(MONDAY, "10:00"))).status_code == 201
        found = await api.get(f"/v1/providers/{provider.id}/slots?from={MONDAY}&to={MONDAY}", headers=user.headers)
        starts = [s["startTime"][11:16] for s in found.json()["slots"]]
        # Local 10:00 is booked, and blocks 09:00-11:00 with its buffer: 09:00 (blocking 08:00-10:00) and 11:00
        # (10:00-12:00) meet it; 13:00 to 16:00 local are left, 11:00 to 14:00 UTC.
        assert starts == ["11:00", "12:00", "13:00", "14:00"]


class TestBookingAScheduledProvider:
    @pytest.mark.parametrize(
        ("times", "code"),
        [
            (local(MONDAY, "08:00"), "outside_hours"),
            (local(MONDAY, "12:00"), "outside_hours"),  # the lunch break
            (local(MONDAY, "11:30", 60), "outside_hours"),  # runs into the break
            (local(MONDAY, "09:30"), "off_grid"),
            (local(MONDAY, "09:00", 30), "wrong_length"),
            (local("2027-06-08", "09:00"), "outside_hours"),  # a Tuesday
        ],
    )
    async def test_only_an_offered_slot_books(self, api: httpx.AsyncClient, times: dict[str, str], code: str) -> None:
        provider, user = await _scheduled(api)
        _problem(await _book(api, user, provider, times), 422, "outside-availability", code)
        assert (await _book(api, user, provider, local(MONDAY, "09:00"))).status_code == 201

    async def test_notice_horizon_and_daily_limit(self, api: httpx.AsyncClient) -> None:
        soon = datetime.now(UTC) + timedelta(days=1)
        every_day = {day: [{"start": "00:00", "end": "24:00"}] for day in WEEKDAYS}
        provider, user = await _scheduled(
            api, weeklyHours=every_day, minNoticeMinutes=3 * 24 * 60, maxHorizonDays=30, maxBookingsPerDay=2
        )
        tomorrow = soon.astimezone(BERLIN).replace(hour=10, minute=0, second=0, microsecond=0)
        later = tomorrow + timedelta(days=60)
        fine = tomorrow + timedelta(days=7)

        def at(moment: datetime) -> dict[str, str]:
            return {"startTime": iso(moment), "endTime": iso(moment + timedelta(hours=1))}

        _problem(await _book(api, user, provider, at(tomorrow)), 422, "outside-availability", "too_soon")
        _problem(await _book(api, user, provider, at(later)), 422, "outside-availability", "too_far")
        for hour in range(2):
            assert (await _book(api, user, provider, at(fine + timedelta(hours=hour)))).status_code == 201
        _problem(await _book(api, user, provider, at(fine + timedelta(hours=3))), 409, "daily-limit-reached")
        assert (await _book(api, user, provider, at(fine + timedelta(days=1)))).status_code == 201

    async def test_a_reschedule_obeys_the_same_rules(self, api: httpx.AsyncClient) -> None:
        provider, user = await _scheduled(api, maxBookingsPerDay=1)
        made = await _book(api, user, provider, local(MONDAY, "09:00"))
        path = made.headers["Location"]
        _problem(await api.patch(path, json=local(MONDAY, "12:00"), headers=user.headers), 422,
                 "outside-availability", "outside_hours")  # fmt: skip
        moved = await api.patch(path, json=local(MONDAY, "14:00"), headers=user.headers)
        assert moved.status_code == 200, "its own booking does not count against the day's limit"
        other = await _book(api, user, provider, local("2027-06-14", "09:00"))
        _problem(
            await api.patch(other.headers["Location"], json=local(MONDAY, "10:00"), headers=user.headers),
            409,
            "daily-limit-reached",
        )

    async def test_a_new_schedule_leaves_existing_bookings_as_they_are(self, api: httpx.AsyncClient) -> None:
        provider, user = await account(api, "provider"), await account(api)
        night = {"startTime": "2027-06-07T01:00:00Z", "endTime": "2027-06-07T02:00:00Z"}
        made = await _book(api, user, provider, night)
        assert made.status_code == 201, "a provider without a schedule is unrestricted, 3 a.m. included"
        await api.put(f"/v1/providers/{provider.id}/availability", json=schedule(), headers=provider.headers)
        kept = await api.get(made.headers["Location"], headers=user.headers)
        assert (kept.status_code, kept.json()["status"]) == (200, "confirmed")
        _problem(await _book(api, user, provider, night), 422, "outside-availability", "outside_hours")
