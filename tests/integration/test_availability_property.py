"""Search and booking agree (design invariant 8), for random schedules, overrides and bookings, on both backends:
every slot a search offers books (alone), and no time it does not offer books at all."""

from __future__ import annotations

import secrets
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Service
from tests.support.api import PASSWORD, iso

ZONES = ["Europe/Berlin", "America/New_York", "Asia/Kolkata", "UTC"]
# Transition days of 2027 (Berlin, New York) and an ordinary one.
DAYS = [date(2027, 3, 28), date(2027, 3, 14), date(2027, 10, 31), date(2027, 11, 7), date(2027, 6, 9)]
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
OFFERED_TRIED = 6  # of each search's slots, booked and cancelled one by one
PROBES = 8  # times the search did not offer, each of which must be refused


def _hhmm(quarter: int) -> str:
    return f"{quarter // 4:02d}:{quarter % 4 * 15:02d}"


@st.composite
def day_hours(draw: st.DrawFn) -> list[dict[str, str]]:
    """Up to three intervals of a day on the quarter hour, apart or touching."""
    bounds = sorted(draw(st.sets(st.integers(0, 96), min_size=0, max_size=6)))
    pairs = [(a, b) for a, b in zip(bounds[::2], bounds[1::2], strict=False) if a < b]
    return [{"start": _hhmm(a), "end": _hhmm(b)} for a, b in pairs]


world = st.fixed_dictionaries(
    {
        "zone": st.sampled_from(ZONES),
        "day": st.sampled_from(DAYS),
        "hours": day_hours(),
        "override": st.none() | day_hours(),
        "length": st.sampled_from([15, 30, 45, 60, 90]),
        "step": st.none() | st.sampled_from([15, 30, 60]),
        "before": st.sampled_from([0, 15, 30]),
        "after": st.sampled_from([0, 15, 30]),
        "limit": st.none() | st.integers(1, 3),
        "booked": st.integers(0, 2),
        "shifts": st.lists(st.sampled_from([-30, -15, -10, -5, 5, 10, 15, 20, 30, 45]), min_size=1, max_size=4),
        "probes": st.lists(st.tuples(st.integers(-12, 300), st.sampled_from([15, 30, 45, 60, 90])), max_size=PROBES),
    }
)


def _account(client: httpx.Client, role: str) -> tuple[str, dict[str, str]]:
    email = f"{role}-{secrets.token_hex(5)}@example.com"
    made = client.post("/v1/auth/register", json={"email": email, "password": PASSWORD, "name": "P", "role": role})
    tokens = client.post("/v1/auth/login", json={"email": email, "password": PASSWORD}).json()
    return made.json()["id"], {"Authorization": f"Bearer {tokens['accessToken']}"}


def _search(client: httpx.Client, provider: str, day: date, user: dict[str, str]) -> list[tuple[str, str]]:
    found = client.get(f"/v1/providers/{provider}/slots?from={day}&to={day}", headers=user)
    assert found.status_code == 200, found.text
    return [(slot["startTime"], slot["endTime"]) for slot in found.json()["slots"]]


def _book(client: httpx.Client, provider: str, user: dict[str, str], start: str, end: str) -> httpx.Response:
    return client.post("/v1/bookings", json={"providerId": provider, "startTime": start, "endTime": end}, headers=user)


def test_search_and_booking_agree(service: Service) -> None:
    with httpx.Client(base_url=service.url, timeout=30) as client:
        _, user = _account(client, "user")

        @settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(world)
        def run(w: dict[str, Any]) -> None:
            provider, provider_auth = _account(client, "provider")
            day: date = w["day"]
            body = {
                "timeZone": w["zone"],
                "weeklyHours": {WEEKDAYS[day.weekday()]: w["hours"]},
                "slotLengthMinutes": w["length"],
                "bufferBeforeMinutes": w["before"],
                "bufferAfterMinutes": w["after"],
                **({"slotIntervalMinutes": w["step"]} if w["step"] else {}),
                **({"maxBookingsPerDay": w["limit"]} if w["limit"] else {}),
            }
            put = client.put(f"/v1/providers/{provider}/availability", json=body, headers=provider_auth)
            assert put.status_code == 201, put.text
            if w["override"] is not None:
                path = f"/v1/providers/{provider}/availability/overrides/{day}"
                assert client.put(path, json={"intervals": w["override"]}, headers=provider_auth).status_code == 201
            for _ in range(w["booked"]):  # other bookings first, each on a slot then offered
                if offered := _search(client, provider, day, user):
                    assert _book(client, provider, user, *offered[len(offered) // 2]).status_code == 201

            offered = _search(client, provider, day, user)

            for start, end in offered[:OFFERED_TRIED]:
                made = _book(client, provider, user, start, end)
                assert made.status_code == 201, (w, start, end, made.text)
                assert client.post(f"/v1/bookings/{made.json()['id']}/cancel", headers=user).status_code == 200
            midnight = datetime.combine(day, datetime.min.time(), tzinfo=ZoneInfo(w["zone"]))
            length = timedelta(minutes=w["length"])
            # Anywhere from 3 h before the local midnight, on the 5-minute grid; and offered slots moved a little.
            probes = [midnight + timedelta(minutes=5 * quarter - 180) for quarter, _ in w["probes"]]
            lengths = [timedelta(minutes=minutes) for _, minutes in w["probes"]]
            for (slot_start, _), shift in zip(offered, w["shifts"], strict=False):
                probes.append(datetime.fromisoformat(slot_start) + timedelta(minutes=shift))
                lengths.append(length)
            for start_at, duration in zip(probes, lengths, strict=True):
                start, end = iso(start_at), iso(start_at + duration)
                if (start, end) in offered:
                    continue
                refused = _book(client, provider, user, start, end)
                assert refused.status_code in (409, 422), (w, start, end, refused.text)

        try:
            run()
        finally:
            service.db.truncate()
