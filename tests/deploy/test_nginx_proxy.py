"""deploy/nginx/nginx.conf, run by Debian's nginx in front of two API processes: HTTP, request ids, WebSockets."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.deploy.conftest import Deployment, NginxProcess, render_nginx_conf
from tests.support.api import account, book
from tests.support.servers import free_port
from tests.support.ws import EventClient


async def eventually(check: Callable[[], bool], message: str = "", within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, message or "the condition did not hold in time"
        await asyncio.sleep(0.05)


async def test_http_passes_through_to_both_replicas(deployment: Deployment) -> None:
    marker = f"deploy-{secrets.token_hex(6)}"
    async with httpx.AsyncClient(base_url=deployment.proxy.url, timeout=30) as client:
        user = await account(client, "user")
        provider = await account(client, "provider")
        created = await book(client, user, provider)
        assert created.status_code == 201, created.text
        booking_id = created.json()["id"]
        for i in range(6):
            got = await client.get(
                f"/v1/bookings/{booking_id}", headers={**user.headers, "X-Request-ID": f"{marker}-{i}"}
            )
            assert got.status_code == 200, got.text
            assert got.json()["id"] == booking_id
            assert got.headers["x-request-id"] == f"{marker}-{i}"
            assert got.headers["content-type"].startswith("application/json")

    # Round robin: each replica served some of the marked requests (every request is one access-log line).
    for server in deployment.servers:
        await eventually(lambda server=server: marker in server.log(), f"{server.url} got none of the requests")


async def test_request_id_is_made_when_the_client_sends_none(deployment: Deployment) -> None:
    async with httpx.AsyncClient(base_url=deployment.proxy.url, timeout=10) as client:
        response = await client.get("/health/live")
    assert response.status_code == 200
    request_id = response.headers["x-request-id"]
    assert len(request_id) == 32
    # nginx made it ($request_id) and passed it on: nginx's access log and the replica that answered show the same id.
    # Both log a request after answering it, so give them a moment.
    await eventually(lambda: any(request_id in server.log() for server in deployment.servers))
    await eventually(lambda: request_id in deployment.proxy.stdout_path.read_text())


async def test_the_access_log_keeps_no_credential_a_url_carries(deployment: Deployment) -> None:
    feed_secret, token = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    async with httpx.AsyncClient(base_url=deployment.proxy.url, timeout=10) as client:
        assert (await client.get(f"/v1/calendar-feeds/{feed_secret}.ics")).status_code == 404
        assert (await client.get("/v1/mail/unsubscribe", params={"token": token})).status_code == 404
    log = deployment.proxy.stdout_path
    await eventually(lambda: '"GET /v1/mail/unsubscribe HTTP/1.1" 404' in log.read_text())
    assert '"GET /v1/calendar-feeds/[redacted].ics HTTP/1.1" 404' in log.read_text()
    assert feed_secret not in log.read_text()
    assert token not in log.read_text()


async def test_problem_documents_from_the_api_pass_through(deployment: Deployment) -> None:
    async with httpx.AsyncClient(base_url=deployment.proxy.url, timeout=10) as client:
        response = await client.get("/v1/bookings", headers={"X-Request-ID": "deploy-unauthorised"})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["requestId"] == "deploy-unauthorised"


async def test_a_clients_own_x_forwarded_for_does_not_reach_the_replicas(deployment: Deployment) -> None:
    """The replicas take the client's address from nginx's X-Forwarded-For; a client must not choose it.

    Login is limited per address and email (3 a minute here): were a spoofed header passed on, each attempt
    would count in a bucket of its own and the fourth would get through.
    """
    async with httpx.AsyncClient(base_url=deployment.proxy.url, timeout=30) as client:
        user = await account(client, "user")  # one login
        tries = [
            await client.post(
                "/v1/auth/login",
                json={"email": user.email, "password": "Wr0ng-Passw0rd!"},
                headers={"X-Forwarded-For": f"203.0.113.{n}", "X-Real-IP": f"203.0.113.{n}"},
            )
            for n in range(3)
        ]
    assert [r.status_code for r in tries] == [401, 401, 429]


async def test_websocket_through_the_proxy_receives_booking_created(deployment: Deployment) -> None:
    async with httpx.AsyncClient(base_url=deployment.proxy.url, timeout=30) as client:
        user = await account(client, "user")
        provider = await account(client, "provider")
        # Two sockets through the proxy: round robin puts them on different replicas, and the event reaches both
        # (Redis fans it out), whichever replica the booking request lands on.
        async with (
            EventClient(deployment.proxy.url, user.token) as user_events,
            EventClient(deployment.proxy.url, provider.token) as provider_events,
        ):
            created = await book(client, user, provider)
            assert created.status_code == 201, created.text
            booking_id = created.json()["id"]
            for events in (user_events, provider_events):
                received = await events.wait_for(1, within=15)
                assert received[0]["event"] == "booking.created"
                assert received[0]["data"]["id"] == booking_id


def test_no_reachable_replica_is_a_problem_document(tmp_path: Path) -> None:
    """The same config in front of two ports where nothing listens: a 503 problem document, not nginx's HTML."""
    port = free_port()
    proxy = NginxProcess(render_nginx_conf([free_port(), free_port()], port), tmp_path / "nginx", port).start()
    try:
        response = httpx.get(f"{proxy.url}/v1/providers", headers={"X-Request-ID": "deploy-down"}, timeout=10)
    finally:
        proxy.stop()
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-request-id"] == "deploy-down"
    assert response.json() == {
        "type": "about:blank",
        "title": "Service Unavailable",
        "status": 503,
        "detail": "No API instance is reachable.",
        "requestId": "deploy-down",
    }
