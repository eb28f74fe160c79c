"""No credential reaches any log (design §5): a whole session against a distributed deployment, every line read.

Two API instances and a worker on PostgreSQL and Redis, at DEBUG (the level that prints the most, the websockets
library's handshake headers included). The session registers, logs in (once with a wrong password), refreshes,
opens sockets all three ways, registers a webhook that the worker delivers to, rotates its secret and logs out.
Then every line of every process must be JSON, and none may hold a password, an access or refresh token (nor a
token's signature), a refresh token's stored hash, a password hash, a webhook secret or the signing keys.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROTATED_KEY, SIGNING_KEY
from tests.support.api import PASSWORD, admin_account, future_slot, login, register
from tests.support.cluster import Cluster
from tests.support.servers import WorkerProcess
from tests.support.webhook_receiver import WebhookReceiver
from tests.support.ws import EventClient

WRONG_PASSWORD = "Wr0ng-Passw0rd!"


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[tuple[Cluster, WorkerProcess]]:
    cluster = Cluster.started(
        tmp_path, "api-0", "api-1", BOOKINGS_LOG_LEVEL="DEBUG", BOOKINGS_WEBHOOK_ALLOW_PRIVATE="true"
    )
    worker = WorkerProcess(env=cluster.env, log_path=tmp_path / "worker.log").start()
    yield cluster, worker
    worker.stop()
    cluster.teardown()


async def test_a_whole_session_leaves_no_secret_in_any_log_line(deployment: tuple[Cluster, WorkerProcess]) -> None:
    cluster, worker = deployment
    secrets: list[str] = [PASSWORD, WRONG_PASSWORD, SIGNING_KEY[1], ROTATED_KEY[1]]
    with WebhookReceiver() as receiver:
        async with (
            httpx.AsyncClient(base_url=cluster.url(0), timeout=30) as a,
            httpx.AsyncClient(base_url=cluster.url(1), timeout=30) as b,
        ):
            admin = await admin_account(a, cluster.db.url, cluster.env["BOOKINGS_JWT_KEYS"])
            hook = (
                await a.post(
                    "/v1/webhooks",
                    json={"url": receiver.url, "eventTypes": ["booking.created"]},
                    headers=admin.headers,
                )
            ).json()
            rotated = (await b.post(f"/v1/webhooks/{hook['id']}/rotate-secret", headers=admin.headers)).json()
            secrets += [hook["secret"], rotated["secret"], admin.token, admin.refresh_token]

            user = await register(a)
            provider = await register(b, "provider")
            assert (
                await a.post("/v1/auth/login", json={"email": user["email"], "password": WRONG_PASSWORD})
            ).status_code == 401
            first = await login(a, user["email"])
            renewed = (await b.post("/v1/auth/refresh", json={"refreshToken": first["refreshToken"]})).json()
            provider_tokens = await login(b, provider["email"])
            tokens = [first, renewed, provider_tokens]
            secrets += [t[kind] for t in tokens for kind in ("accessToken", "refreshToken")]

            access = renewed["accessToken"]
            sockets = [
                EventClient(cluster.url(i % 2), token, auth=auth, since=0)
                for i, (token, auth) in enumerate(
                    [(access, "query"), (access, "subprotocol"), (provider_tokens["accessToken"], "header")]
                )
            ]
            for socket in sockets:
                await socket.__aenter__()
                await socket.started()
            start, end = future_slot()
            made = await b.post(
                "/v1/bookings",
                json={"providerId": provider["id"], "startTime": start, "endTime": end},
                headers={"Authorization": f"Bearer {access}"},
            )
            assert made.status_code == 201, made.text
            for socket in sockets:
                await socket.wait_for(1, within=5)
                await socket.__aexit__(None, None, None)
            deadline = time.monotonic() + 10
            while not receiver.deliveries:  # the worker's delivery, logged at DEBUG
                assert time.monotonic() < deadline, "the webhook was not delivered"
                await asyncio.sleep(0.1)
            out = await a.post("/v1/auth/logout", json={"refreshToken": renewed["refreshToken"]})
            assert out.status_code == 204
    await asyncio.sleep(0.5)  # the last lines are written

    logs = {server.log_path.name: server.log() for server in cluster.servers}
    logs["worker.log"] = worker.log_path.read_text()
    assert "httpcore" in logs["worker.log"], "the worker logged its delivery (at DEBUG)"
    hashes = [hashlib.sha256(t["refreshToken"].encode()).hexdigest() for t in tokens]
    signatures = [t["accessToken"].split(".")[2] for t in tokens]
    webhook_keys = [s.removeprefix("whsec_") for s in (hook["secret"], rotated["secret"])]
    for name, log in logs.items():
        assert log.strip(), f"{name} is empty"
        for number, line in enumerate(log.splitlines(), start=1):
            assert isinstance(json.loads(line), dict), f"{name}:{number} is not a JSON object: {line[:200]}"
        for secret in [*secrets, *hashes, *signatures, *webhook_keys, "$argon2"]:
            assert secret not in log, f"{name} holds a secret ({secret[:6]}...)"
