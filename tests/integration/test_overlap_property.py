"""The overlap rule, checked against a model: random creates, reschedules and cancels on one provider.

The model is the rule itself in a few lines (half-open intervals; cancelled bookings hold nothing); the service
must accept exactly what the model accepts, on both backends.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Service
from tests.support.api import PASSWORD, iso

BASE = datetime(2032, 3, 1, 8, tzinfo=UTC)
UNIT = timedelta(minutes=15)

slot = st.tuples(st.integers(0, 24), st.integers(1, 6))  # (start unit, length in units)
operation = st.one_of(
    st.tuples(st.just("create"), slot),
    st.tuples(st.just("reschedule"), st.tuples(st.integers(0, 9), slot)),
    st.tuples(st.just("cancel"), st.integers(0, 9)),
)


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _body(start: int, length: int) -> dict[str, str]:
    return {"startTime": iso(BASE + start * UNIT), "endTime": iso(BASE + (start + length) * UNIT)}


def _account(client: httpx.Client, role: str) -> tuple[str, dict[str, str]]:
    email = f"{role}-{secrets.token_hex(5)}@example.com"
    created = client.post("/v1/auth/register", json={"email": email, "password": PASSWORD, "name": "P", "role": role})
    tokens = client.post("/v1/auth/login", json={"email": email, "password": PASSWORD}).json()
    return created.json()["id"], {"Authorization": f"Bearer {tokens['accessToken']}"}


def test_service_accepts_exactly_what_the_model_accepts(service: Service) -> None:
    with httpx.Client(base_url=service.url, timeout=30) as client:
        _, user = _account(client, "user")

        @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(st.lists(operation, min_size=1, max_size=12))
        def run(operations: list[tuple[str, object]]) -> None:
            provider_id, _ = _account(client, "provider")
            active: dict[str, tuple[int, int]] = {}  # booking id -> (start, end) in units
            made: list[str] = []
            for kind, arg in operations:
                if kind == "create":
                    start, length = arg  # type: ignore[misc]
                    interval = (start, start + length)
                    expected = 409 if any(_overlaps(interval, other) for other in active.values()) else 201
                    response = client.post(
                        "/v1/bookings", json={"providerId": provider_id, **_body(start, length)}, headers=user
                    )
                    assert response.status_code == expected, (operations, response.text)
                    if expected == 201:
                        active[response.json()["id"]] = interval
                        made.append(response.json()["id"])
                elif kind == "reschedule" and made:
                    index, (start, length) = arg  # type: ignore[misc]
                    booking_id = made[index % len(made)]
                    interval = (start, start + length)
                    others = [iv for bid, iv in active.items() if bid != booking_id]
                    if booking_id not in active:
                        expected = 409  # cancelled
                    else:
                        expected = 409 if any(_overlaps(interval, o) for o in others) else 200
                    response = client.patch(f"/v1/bookings/{booking_id}", json=_body(start, length), headers=user)
                    assert response.status_code == expected, (operations, response.text)
                    if expected == 200:
                        active[booking_id] = interval
                elif kind == "cancel" and made:
                    booking_id = made[arg % len(made)]  # type: ignore[operator]
                    response = client.post(f"/v1/bookings/{booking_id}/cancel", headers=user)
                    assert response.status_code == 200, response.text
                    active.pop(booking_id, None)
            listed = client.get("/v1/bookings?type=upcoming&limit=100", headers=user).json()["items"]
            confirmed = {b["id"] for b in listed if b["providerId"] == provider_id and b["status"] == "confirmed"}
            assert confirmed == set(active)

        try:
            run()
        finally:
            service.db.truncate()
