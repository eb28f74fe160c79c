"""Who sees and changes what (invariant 5), and which tokens are accepted at all."""

from __future__ import annotations

import base64
import json
import time

import httpx
import jwt
import pytest

from tests.conftest import RETIRED_KEY, ROTATED_KEY, SIGNING_KEY
from tests.support.api import Account, account, book, future_slot


async def _ids(api: httpx.AsyncClient, who: Account, query: str = "") -> set[str]:
    response = await api.get(f"/v1/bookings?limit=100{query}", headers=who.headers)
    assert response.status_code == 200, response.text
    return {b["id"] for b in response.json()["items"]}


class TestBookingVisibility:
    async def test_another_users_booking_is_404_on_every_route(self, api: httpx.AsyncClient) -> None:
        alice, bob, provider = await account(api), await account(api), await account(api, "provider")
        booking = (await book(api, bob, provider)).json()
        url = f"/v1/bookings/{booking['id']}"
        start, end = future_slot()
        responses = [
            await api.get(url, headers=alice.headers),
            await api.patch(url, json={"startTime": start, "endTime": end}, headers=alice.headers),
            await api.post(f"{url}/cancel", headers=alice.headers),
        ]
        assert [r.status_code for r in responses] == [404, 404, 404]
        assert all(r.json()["type"] == "/problems/booking-not-found" for r in responses)
        # Indistinguishable from a booking that does not exist.
        missing = await api.get("/v1/bookings/00000000-0000-4000-8000-000000000000", headers=alice.headers)
        assert missing.json()["title"] == responses[0].json()["title"]
        assert (await api.get(url, headers=bob.headers)).json()["status"] == "confirmed"

    async def test_lists_are_scoped_by_role(self, api: httpx.AsyncClient, admin: Account) -> None:
        alice, bob = await account(api), await account(api)
        doctor, tutor = await account(api, "provider"), await account(api, "provider")
        a1 = (await book(api, alice, doctor)).json()["id"]
        a2 = (await book(api, alice, tutor)).json()["id"]
        b1 = (await book(api, bob, doctor)).json()["id"]
        for query in ("", "&type=upcoming"):
            assert await _ids(api, alice, query) == {a1, a2}
            assert await _ids(api, bob, query) == {b1}
            assert await _ids(api, doctor, query) == {a1, b1}
            assert await _ids(api, tutor, query) == {a2}
            assert await _ids(api, admin, query) == {a1, a2, b1}

    async def test_provider_sees_assigned_booking_and_admin_sees_all(
        self, api: httpx.AsyncClient, admin: Account
    ) -> None:
        user, provider, other = await account(api), await account(api, "provider"), await account(api, "provider")
        booking = (await book(api, user, provider)).json()
        url = f"/v1/bookings/{booking['id']}"
        assert (await api.get(url, headers=provider.headers)).status_code == 200
        assert (await api.get(url, headers=other.headers)).status_code == 404
        assert (await api.get(url, headers=admin.headers)).status_code == 200

    async def test_admin_may_reschedule_and_cancel_any_booking(self, api: httpx.AsyncClient, admin: Account) -> None:
        user, provider = await account(api), await account(api, "provider")
        booking = (await book(api, user, provider)).json()
        start, end = future_slot()
        url = f"/v1/bookings/{booking['id']}"
        moved = await api.patch(url, json={"startTime": start, "endTime": end}, headers=admin.headers)
        assert moved.status_code == 200
        assert moved.json()["userId"] == user.id  # the booking stays the user's
        assert (await api.post(f"{url}/cancel", headers=admin.headers)).json()["status"] == "cancelled"


class TestAdminOnlyData:
    async def test_user_and_provider_cannot_list_users(self, api: httpx.AsyncClient, admin: Account) -> None:
        user, provider = await account(api), await account(api, "provider")
        assert (await api.get("/v1/users", headers=user.headers)).status_code == 403
        assert (await api.get("/v1/users", headers=provider.headers)).status_code == 403
        everyone = await api.get("/v1/users?limit=100", headers=admin.headers)
        assert everyone.status_code == 200
        assert {user.id, provider.id, admin.id} <= {u["id"] for u in everyone.json()["items"]}

    async def test_providers_directory_lists_only_providers(self, api: httpx.AsyncClient) -> None:
        user, provider = await account(api), await account(api, "provider")
        listed = (await api.get("/v1/providers", headers=user.headers)).json()
        assert [p["id"] for p in listed["items"]] == [provider.id]
        assert "email" not in listed["items"][0]


def _token(kid: str, secret: str, **claims: object) -> str:
    now = int(time.time())
    payload = {"sub": "", "role": "user", "iss": "bookings", "iat": now, "exp": now + 600, **claims}
    return jwt.encode(payload, secret, algorithm="HS256", headers={"kid": kid})


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


class TestTokens:
    async def test_token_of_a_key_still_in_the_ring_is_accepted(self, api: httpx.AsyncClient) -> None:
        user = await account(api)
        for kid, secret in (SIGNING_KEY, ROTATED_KEY):
            token = _token(kid, secret, sub=user.id)
            me = await api.get("/v1/users/me", headers={"Authorization": f"Bearer {token}"})
            assert me.status_code == 200, (kid, me.text)
            assert me.json()["id"] == user.id

    async def test_login_tokens_name_the_signing_key(self, api: httpx.AsyncClient) -> None:
        user = await account(api)
        assert jwt.get_unverified_header(user.token)["kid"] == SIGNING_KEY[0]

    @pytest.mark.parametrize(
        "case", ["retired key", "expired", "alg none", "tampered payload", "wrong secret", "no kid", "garbage"]
    )
    async def test_bad_tokens_are_401(self, api: httpx.AsyncClient, case: str) -> None:
        user = await account(api)
        now = int(time.time())
        good = _token(*SIGNING_KEY, sub=user.id)
        header, payload, signature = good.split(".")
        tampered = {"sub": user.id, "role": "admin", "iss": "bookings", "iat": now, "exp": now + 600}
        token = {
            "retired key": _token(*RETIRED_KEY, sub=user.id),
            "expired": _token(*SIGNING_KEY, sub=user.id, iat=now - 3600, exp=now - 60),
            "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': SIGNING_KEY[0]})}.{payload}.",
            "tampered payload": f"{header}.{_b64(tampered)}.{signature}",
            "wrong secret": _token(SIGNING_KEY[0], "x" * 48, sub=user.id),
            "no kid": jwt.encode(
                {"sub": user.id, "role": "user", "iss": "bookings", "iat": now, "exp": now + 60}, SIGNING_KEY[1]
            ),
            "garbage": "not.a.token",
        }[case]
        response = await api.get("/v1/bookings", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["status"] == 401

    async def test_anonymous_callers_see_nothing(self, api: httpx.AsyncClient) -> None:
        for path in ("/v1/bookings", "/v1/users/me", "/v1/providers", "/v1/users"):
            assert (await api.get(path)).status_code == 401, path
