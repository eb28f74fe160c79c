"""Webhook URLs that point inside the network are refused (the default: private addresses not allowed)."""

from __future__ import annotations

import httpx
import pytest

from tests.support.api import Account


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://127.9.9.9:8080/hook",
        "http://10.1.2.3/hook",
        "http://172.16.0.1/hook",
        "http://192.168.1.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
        "http://localhost/hook",
    ],
)
async def test_internal_destinations_are_422(api: httpx.AsyncClient, admin: Account, url: str) -> None:
    response = await api.post(
        "/v1/webhooks", json={"url": url, "eventTypes": ["booking.created"]}, headers=admin.headers
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "url"
    assert (await api.get("/v1/webhooks", headers=admin.headers)).json()["items"] == []


async def test_a_public_address_is_accepted_and_only_admins_manage_webhooks(
    api: httpx.AsyncClient, admin: Account
) -> None:
    from tests.support.api import account

    body = {"url": "https://93.184.216.34/hook", "eventTypes": ["booking.created", "booking.reminder"]}
    created = await api.post("/v1/webhooks", json=body, headers=admin.headers)
    assert created.status_code == 201, created.text
    user = await account(api)
    assert (await api.post("/v1/webhooks", json=body, headers=user.headers)).status_code == 403
    assert (await api.get("/v1/webhooks", headers=user.headers)).status_code == 403
    assert (await api.delete(f"/v1/webhooks/{created.json()['id']}", headers=user.headers)).status_code == 403
    assert (await api.delete(f"/v1/webhooks/{created.json()['id']}", headers=admin.headers)).status_code == 204
