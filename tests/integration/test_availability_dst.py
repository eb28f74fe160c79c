"""Slot search across daylight-saving changes (design invariant 8, RFC 5545 §3.3.5), on both backends.

Each case sets a provider's schedule, searches, and expects these exact UTC slot starts. Then every slot found
books (alone: booked, then cancelled) with ``201``, and the first one moved an hour earlier, the mistake of an
offset taken from the wrong side of a transition, is refused.

2027: Europe/Berlin springs forward on Sunday 28 March (02:00 → 03:00) and falls back on Sunday 31 October
(03:00 → 02:00); America/New_York on Sunday 14 March and Sunday 7 November, at 02:00.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.support.api import Account, account

BERLIN, NEW_YORK, TOKYO = "Europe/Berlin", "America/New_York", "Asia/Tokyo"
EVERY_DAY = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def hours(*spans: str) -> list[dict[str, str]]:
    return [{"start": span[:5], "end": span[6:]} for span in spans]


@dataclass(frozen=True)
class Case:
    id: str
    zone: str
    weekly: dict[str, list[dict[str, str]]]
    search: tuple[str, str]
    expected: list[str]  # UTC starts, "YYYY-MM-DDTHH:MM"
    length: int = 60
    step: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    booked: list[tuple[str, str]] = field(default_factory=list)  # UTC (start, end) booked before the search
    viewer: str | None = None
    earlier_is_a_slot: bool = False  # the window, not the schedule, cut the hour before the first slot


def sunday(*spans: str) -> dict[str, list[dict[str, str]]]:
    return {"sunday": hours(*spans)}


CASES = [
    Case("berlin-winter-sunday", BERLIN, sunday("09:00-12:00"), ("2027-03-21", "2027-03-21"),
         ["2027-03-21T08:00", "2027-03-21T09:00", "2027-03-21T10:00"]),
    Case("berlin-spring-forward-day", BERLIN, sunday("09:00-12:00"), ("2027-03-28", "2027-03-28"),
         ["2027-03-28T07:00", "2027-03-28T08:00", "2027-03-28T09:00"]),
    Case("berlin-summer-sunday", BERLIN, sunday("09:00-12:00"), ("2027-04-04", "2027-04-04"),
         ["2027-04-04T07:00", "2027-04-04T08:00", "2027-04-04T09:00"]),
    Case("berlin-fall-back-day", BERLIN, sunday("09:00-12:00"), ("2027-10-31", "2027-10-31"),
         ["2027-10-31T08:00", "2027-10-31T09:00", "2027-10-31T10:00"]),
    Case("berlin-night-on-spring-forward-has-5", BERLIN, sunday("00:00-06:00"), ("2027-03-28", "2027-03-28"),
         ["2027-03-27T23:00", "2027-03-28T00:00", "2027-03-28T01:00", "2027-03-28T02:00", "2027-03-28T03:00"]),
    Case("berlin-night-on-fall-back-has-7", BERLIN, sunday("00:00-06:00"), ("2027-10-31", "2027-10-31"),
         ["2027-10-30T22:00", "2027-10-30T23:00", "2027-10-31T00:00", "2027-10-31T01:00", "2027-10-31T02:00",
          "2027-10-31T03:00", "2027-10-31T04:00"]),
    Case("berlin-start-inside-the-gap", BERLIN, sunday("02:30-04:30"), ("2027-03-28", "2027-03-28"),
         ["2027-03-28T01:30", "2027-03-28T02:00"], length=30),
    Case("berlin-the-repeated-hour", BERLIN, sunday("02:00-03:00"), ("2027-10-31", "2027-10-31"),
         ["2027-10-31T00:00", "2027-10-31T00:30", "2027-10-31T01:00", "2027-10-31T01:30"], length=30),
    Case("berlin-a-break", BERLIN, sunday("09:00-12:00", "13:00-15:00"), ("2027-03-21", "2027-03-21"),
         ["2027-03-21T08:00", "2027-03-21T09:00", "2027-03-21T10:00", "2027-03-21T12:00", "2027-03-21T13:00"]),
    Case("berlin-override-closes-the-dst-day", BERLIN, sunday("09:00-12:00"), ("2027-03-28", "2027-04-04"),
         ["2027-04-04T07:00", "2027-04-04T08:00", "2027-04-04T09:00"], overrides={"2027-03-28": []}),
    Case("berlin-override-hours-on-fall-back", BERLIN, sunday("09:00-12:00"), ("2027-10-31", "2027-10-31"),
         ["2027-10-31T09:00"], overrides={"2027-10-31": hours("10:00-11:00")}),
    Case("berlin-buffers-around-a-booking", BERLIN, sunday("09:00-13:00"), ("2027-03-21", "2027-03-21"),
         ["2027-03-21T10:00", "2027-03-21T11:00"], settings={"bufferAfterMinutes": 30},
         booked=[("2027-03-21T08:00", "2027-03-21T09:00")]),
    Case("berlin-daily-limit-reached", BERLIN, sunday("09:00-12:00"), ("2027-03-21", "2027-03-28"),
         ["2027-03-28T07:00", "2027-03-28T08:00", "2027-03-28T09:00"], settings={"maxBookingsPerDay": 1},
         booked=[("2027-03-21T08:00", "2027-03-21T09:00")]),
    Case("berlin-night-shifts-seen-from-tokyo", BERLIN, {day: hours("22:00-24:00") for day in EVERY_DAY},
         ("2027-01-13", "2027-01-13"), ["2027-01-12T21:00", "2027-01-12T22:00"], viewer=TOKYO),
    Case("new-york-winter-sunday", NEW_YORK, sunday("09:00-12:00"), ("2027-03-07", "2027-03-07"),
         ["2027-03-07T14:00", "2027-03-07T15:00", "2027-03-07T16:00"]),
    Case("new-york-spring-forward-day", NEW_YORK, sunday("09:00-12:00"), ("2027-03-14", "2027-03-14"),
         ["2027-03-14T13:00", "2027-03-14T14:00", "2027-03-14T15:00"]),
    Case("new-york-day-before-fall-back", NEW_YORK, {"saturday": hours("09:00-12:00")}, ("2027-11-06", "2027-11-06"),
         ["2027-11-06T13:00", "2027-11-06T14:00", "2027-11-06T15:00"]),
    Case("new-york-fall-back-day", NEW_YORK, sunday("09:00-12:00"), ("2027-11-07", "2027-11-07"),
         ["2027-11-07T14:00", "2027-11-07T15:00", "2027-11-07T16:00"]),
    Case("new-york-night-on-spring-forward-has-5", NEW_YORK, sunday("00:00-06:00"), ("2027-03-14", "2027-03-14"),
         ["2027-03-14T05:00", "2027-03-14T06:00", "2027-03-14T07:00", "2027-03-14T08:00", "2027-03-14T09:00"]),
    Case("new-york-night-on-fall-back-has-7", NEW_YORK, sunday("00:00-06:00"), ("2027-11-07", "2027-11-07"),
         ["2027-11-07T04:00", "2027-11-07T05:00", "2027-11-07T06:00", "2027-11-07T07:00", "2027-11-07T08:00",
          "2027-11-07T09:00", "2027-11-07T10:00"]),
    Case("new-york-an-interval-inside-the-gap-is-empty", NEW_YORK, sunday("02:30-03:30"), ("2027-03-14", "2027-03-14"),
         [], length=30),
    Case("new-york-the-repeated-hour", NEW_YORK, sunday("01:00-02:00"), ("2027-11-07", "2027-11-07"),
         ["2027-11-07T05:00", "2027-11-07T05:30", "2027-11-07T06:00", "2027-11-07T06:30"], length=30),
    Case("a-night-shift-across-midnight", BERLIN, {"saturday": hours("22:00-24:00"), "sunday": hours("00:00-02:00")},
         ("2027-03-20", "2027-03-21"),
         ["2027-03-20T21:00", "2027-03-20T22:00", "2027-03-20T23:00", "2027-03-21T00:00"]),
    Case("a-step-shorter-than-the-length", BERLIN, sunday("09:00-11:00"), ("2027-03-21", "2027-03-21"),
         ["2027-03-21T08:00", "2027-03-21T08:30", "2027-03-21T09:00"], step=30),
    Case("an-instant-window-on-fall-back", NEW_YORK, sunday("00:00-06:00"),
         ("2027-11-07T05:00:00Z", "2027-11-07T08:00:00Z"),
         ["2027-11-07T05:00", "2027-11-07T06:00", "2027-11-07T07:00"], earlier_is_a_slot=True),
]  # fmt: skip


def _utc(minute: str) -> str:
    return f"{minute}:00Z"


async def _book(api: httpx.AsyncClient, user: Account, provider: str, start: str, end: str) -> httpx.Response:
    body = {"providerId": provider, "startTime": start, "endTime": end}
    return await api.post("/v1/bookings", json=body, headers=user.headers)


class TestSlotsAcrossDaylightSaving:
    @pytest.mark.parametrize("case", [pytest.param(case, id=case.id) for case in CASES])
    async def test_the_exact_slots_book_and_an_hour_off_does_not(self, api: httpx.AsyncClient, case: Case) -> None:
        provider, user = await account(api, "provider"), await account(api)
        schedule = {
            "timeZone": case.zone,
            "weeklyHours": case.weekly,
            "slotLengthMinutes": case.length,
            **({"slotIntervalMinutes": case.step} if case.step else {}),
            **case.settings,
        }
        put = await api.put(f"/v1/providers/{provider.id}/availability", json=schedule, headers=provider.headers)
        assert put.status_code == 201, put.text
        for day, intervals in case.overrides.items():
            path = f"/v1/providers/{provider.id}/availability/overrides/{day}"
            override = await api.put(path, json={"intervals": intervals}, headers=provider.headers)
            assert override.status_code == 201, override.text
        for start, end in case.booked:
            assert (await _book(api, user, provider.id, _utc(start), _utc(end))).status_code == 201

        params = {"from": case.search[0], "to": case.search[1], **({"timeZone": case.viewer} if case.viewer else {})}
        found = await api.get(f"/v1/providers/{provider.id}/slots", params=params, headers=user.headers)

        assert found.status_code == 200, found.text
        answer = found.json()
        assert [slot["startTime"] for slot in answer["slots"]] == [_utc(start) for start in case.expected]
        assert (answer["providerTimeZone"], answer["timeZone"]) == (case.zone, case.viewer or case.zone)
        assert answer["slotLengthMinutes"] == case.length
        for slot in answer["slots"]:
            made = await _book(api, user, provider.id, slot["startTime"], slot["endTime"])
            assert made.status_code == 201, (slot, made.text)
            cancel = await api.post(f"/v1/bookings/{made.json()['id']}/cancel", headers=user.headers)
            assert cancel.status_code == 200
        if answer["slots"] and not case.earlier_is_a_slot:
            first = answer["slots"][0]
            hour = timedelta(hours=1)
            start, end = (datetime.fromisoformat(first[k]) - hour for k in ("startTime", "endTime"))
            shifted = await _book(api, user, provider.id, start.isoformat(), end.isoformat())
            assert shifted.status_code in (409, 422), shifted.text
