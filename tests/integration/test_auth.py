"""Registration, login, refresh-token rotation with reuse detection, logout."""

from __future__ import annotations

import httpx

from tests.support.api import PASSWORD, account, register


class TestRegister:
    async def test_returns_the_user_without_secrets(self, api: httpx.AsyncClient) -> None:
        user = await register(api, "provider")
        assert user["role"] == "provider"
        assert set(user) == {"id", "email", "name", "role", "createdAt", "timeZone", "emailNotifications"}
        assert (user["timeZone"], user["emailNotifications"]) == (None, True)

    async def test_email_is_case_insensitive(self, api: httpx.AsyncClient) -> None:
        user = await register(api)
        again = await api.post(
            "/v1/auth/register", json={"email": user["email"].upper(), "password": PASSWORD, "name": "Again"}
        )
        assert again.status_code == 409
        assert again.json()["type"] == "/problems/email-taken"
        login = await api.post("/v1/auth/login", json={"email": user["email"].upper(), "password": PASSWORD})
        assert login.status_code == 200


class TestLogin:
    async def test_wrong_password_and_unknown_email_get_the_same_401(self, api: httpx.AsyncClient) -> None:
        user = await register(api)
        wrong = await api.post("/v1/auth/login", json={"email": user["email"], "password": PASSWORD + "x"})
        unknown = await api.post("/v1/auth/login", json={"email": "nobody@example.com", "password": PASSWORD})
        assert wrong.status_code == unknown.status_code == 401
        assert wrong.json()["detail"] == unknown.json()["detail"]

    async def test_returns_a_bearer_pair(self, api: httpx.AsyncClient) -> None:
        user = await register(api)
        body = (await api.post("/v1/auth/login", json={"email": user["email"], "password": PASSWORD})).json()
        assert body["tokenType"] == "Bearer"
        assert body["expiresIn"] == 900
        me = await api.get("/v1/users/me", headers={"Authorization": f"Bearer {body['accessToken']}"})
        assert me.json()["id"] == user["id"]


class TestRefresh:
    async def test_each_refresh_token_works_once(self, api: httpx.AsyncClient) -> None:
        user = await account(api)
        first = await api.post("/v1/auth/refresh", json={"refreshToken": user.refresh_token})
        assert first.status_code == 200
        pair = first.json()
        assert pair["refreshToken"] != user.refresh_token
        me = await api.get("/v1/users/me", headers={"Authorization": f"Bearer {pair['accessToken']}"})
        assert me.status_code == 200
        replay = await api.post("/v1/auth/refresh", json={"refreshToken": user.refresh_token})
        assert replay.status_code == 401

    async def test_a_replayed_token_revokes_its_whole_family(self, api: httpx.AsyncClient) -> None:
        user = await account(api)
        rotated = (await api.post("/v1/auth/refresh", json={"refreshToken": user.refresh_token})).json()
        # An attacker replays the stolen, already-used token...
        assert (await api.post("/v1/auth/refresh", json={"refreshToken": user.refresh_token})).status_code == 401
        # ...and the legitimate newer token of the same family is now dead too.
        assert (await api.post("/v1/auth/refresh", json={"refreshToken": rotated["refreshToken"]})).status_code == 401

    async def test_other_sessions_survive_a_revoked_family(self, api: httpx.AsyncClient) -> None:
        user = await account(api)
        other = (await api.post("/v1/auth/login", json={"email": user.email, "password": PASSWORD})).json()
        await api.post("/v1/auth/refresh", json={"refreshToken": user.refresh_token})
        await api.post("/v1/auth/refresh", json={"refreshToken": user.refresh_token})
        assert (await api.post("/v1/auth/refresh", json={"refreshToken": other["refreshToken"]})).status_code == 200


class TestLogout:
    async def test_logout_revokes_the_refresh_token(self, api: httpx.AsyncClient) -> None:
        user = await account(api)
        assert (await api.post("/v1/auth/logout", json={"refreshToken": user.refresh_token})).status_code == 204
        assert (await api.post("/v1/auth/refresh", json={"refreshToken": user.refresh_token})).status_code == 401

    async def test_logout_with_an_unknown_token_is_still_204(self, api: httpx.AsyncClient) -> None:
        assert (await api.post("/v1/auth/logout", json={"refreshToken": "nope"})).status_code == 204
