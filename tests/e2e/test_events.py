"""Real-time events end to end: two API instances on PostgreSQL and Redis, real WebSocket clients."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from websockets.typing import Subprotocol

from tests.conftest import SIGNING_KEY, TEST_ENV, Service, start_service
from tests.support.api import Account, account, admin_account, book, future_slot
from tests.support.cluster import Cluster
from tests.support.databases import ScratchDatabase, create_sqlite
from tests.support.redis_server import RedisServer
from tests.support.servers import ServerProcess
from tests.support.ws import Auth, EventClient


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Instances A and B behind no balancer: tests pick which one each client talks to."""
    cluster = Cluster.started(tmp_path_factory.mktemp("cluster"), "a", "b")
    yield cluster
    cluster.teardown()


@pytest.fixture(scope="module")
def debug_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One embedded (SQLite) server logging at DEBUG, where the websockets library prints handshake headers."""
    service = start_service("sqlite", tmp_path_factory.mktemp("debug"), BOOKINGS_LOG_LEVEL="DEBUG")
    yield service
    service.server.stop()


async def _accounts(url: str, *roles: str) -> list[Account]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        return list(await asyncio.gather(*(account(client, role) for role in roles)))


async def _admin(cluster: Cluster) -> Account:
    async with httpx.AsyncClient(base_url=cluster.url(0)) as client:
        return await admin_account(client, cluster.db.url, cluster.env["BOOKINGS_JWT_KEYS"])


class TestFanOutAcrossInstances:
    async def test_provider_on_b_gets_a_booking_made_on_a_within_a_second(self, cluster: Cluster) -> None:
        user, provider, stranger = await _accounts(cluster.url(0), "user", "provider", "user")
        admin = await _admin(cluster)
        async with (
            EventClient(cluster.url(1), provider.token) as on_b,
            EventClient(cluster.url(1), stranger.token) as stranger_ws,
            EventClient(cluster.url(0), admin.token) as admin_ws,
        ):
            await asyncio.sleep(0.3)  # the sockets are registered
            async with httpx.AsyncClient(base_url=cluster.url(0)) as api:
                started = time.monotonic()
                created = await book(api, user, provider)
            assert created.status_code == 201
            (event,) = await on_b.wait_for(1, within=1.0)
            assert time.monotonic() - started < 1.0
            assert event["event"] == "booking.created"
            assert event["data"]["id"] == created.json()["id"]
            assert event["data"] == created.json()
            assert (await admin_ws.wait_for(1))[0]["id"] == event["id"]
            await asyncio.sleep(0.5)
            assert stranger_ws.events == []
            async with httpx.AsyncClient(base_url=cluster.url(1)) as ops:
                metrics = (await ops.get("/metrics")).json()
            assert metrics["bookings_ws_clients"] >= 2
            assert metrics["bookings_events_delivered_total"] >= 1

    async def test_updates_and_cancellations_follow_in_order(self, cluster: Cluster) -> None:
        user, provider = await _accounts(cluster.url(0), "user", "provider")
        async with EventClient(cluster.url(1), user.token) as ws:
            await asyncio.sleep(0.3)
            async with httpx.AsyncClient(base_url=cluster.url(0)) as api:
                booking = (await book(api, user, provider)).json()
                start, end = future_slot()
                await api.patch(
                    f"/v1/bookings/{booking['id']}", json={"startTime": start, "endTime": end}, headers=user.headers
                )
                await api.post(f"/v1/bookings/{booking['id']}/cancel", headers=user.headers)
            events = await ws.wait_for(3)
        assert [e["event"] for e in events] == ["booking.created", "booking.updated", "booking.cancelled"]
        assert ws.ids() == sorted(ws.ids())
        assert events[1]["data"]["startTime"] == start


class TestResume:
    async def test_the_first_message_says_where_the_stream_starts(self, cluster: Cluster) -> None:
        user, provider = await _accounts(cluster.url(0), "user", "provider")
        async with httpx.AsyncClient(base_url=cluster.url(0)) as api:
            async with EventClient(cluster.url(0), user.token) as watching:
                await watching.started()
                await book(api, user, provider)
                (first,) = await watching.wait_for(1)
            # No `since`: the stream starts at the newest event, and says so before anything else.
            async with EventClient(cluster.url(1), provider.token) as fresh:
                start = await fresh.started()
            assert fresh.ready == {"event": "stream.ready", "lastId": first["id"]}
            assert start == first["id"]
            assert fresh.events == []
            # Dropped before its first event, it resumes from there and misses nothing.
            second = (await book(api, user, provider)).json()
            async with EventClient(cluster.url(1), provider.token, since=start) as resumed:
                assert await resumed.started() == start
                (event,) = await resumed.wait_for(1)
        assert (event["event"], event["data"]["id"]) == ("booking.created", second["id"])
        assert event["id"] > start

    async def test_reconnect_with_since_gets_exactly_what_was_missed_then_live(self, cluster: Cluster) -> None:
        user, provider, other_provider = await _accounts(cluster.url(0), "user", "provider", "provider")
        async with httpx.AsyncClient(base_url=cluster.url(0)) as api:
            async with EventClient(cluster.url(1), provider.token) as ws:
                await asyncio.sleep(0.3)
                await book(api, user, provider)
                last_seen = (await ws.wait_for(1))[-1]["id"]
            made = []
            for i in range(30):  # 20 for this provider, 10 it must not see
                target = provider if i % 3 != 2 else other_provider
                response = await book(api, user, target)
                if target is provider:
                    made.append(response.json()["id"])
            assert len(made) == 20
            async with EventClient(cluster.url(1), provider.token, since=last_seen) as ws:
                replayed = await ws.wait_for(20)
                live = (await book(api, user, provider)).json()["id"]
                events = await ws.wait_for(21)
                await asyncio.sleep(0.5)
        assert [e["data"]["id"] for e in events[:20]] == made
        assert events[20]["data"]["id"] == live
        assert len(ws.events) == 21, "no duplicate at the seam"
        assert ws.ids() == sorted(set(ws.ids()))
        assert replayed[0]["id"] > last_seen


def _token(user_id: str, *, expires_in: float) -> str:
    now = time.time()
    claims = {"sub": user_id, "role": "user", "iss": "bookings", "iat": int(now), "exp": int(now + expires_in)}
    return jwt.encode(claims, SIGNING_KEY[1], algorithm="HS256", headers={"kid": SIGNING_KEY[0]})


class TestSocketAuth:
    @pytest.mark.parametrize("auth", ["query", "subprotocol"])
    @pytest.mark.parametrize("token", ["", "garbage", "expired"])
    async def test_bad_credentials_close_with_4401(self, cluster: Cluster, token: str, auth: Auth) -> None:
        (user,) = await _accounts(cluster.url(0), "user")
        value = _token(user.id, expires_in=-30) if token == "expired" else token
        async with EventClient(cluster.url(0), value, auth=auth) as ws:
            assert await ws.closed() == 4401
            # Refused after the handshake, which selected bookings.v1: a browser sees the 4401, not a failed connect.
            assert ws.connection.subprotocol == ("bookings.v1" if auth == "subprotocol" else None)

    async def test_the_token_in_the_subprotocol_works_and_only_bookings_v1_is_selected(self, cluster: Cluster) -> None:
        user, provider = await _accounts(cluster.url(0), "user", "provider")
        async with EventClient(cluster.url(1), provider.token, auth="subprotocol") as ws:
            await ws.started()
            async with httpx.AsyncClient(base_url=cluster.url(0)) as api:
                created = await book(api, user, provider)
            assert created.status_code == 201, created.text
            (event,) = await ws.wait_for(1)
            response = ws.connection.response
        assert event["data"]["id"] == created.json()["id"]
        assert ws.connection.subprotocol == "bookings.v1"
        assert response is not None
        assert response.headers.get_all("Sec-WebSocket-Protocol") == ["bookings.v1"]
        answer = "\n".join(f"{name}: {value}" for name, value in response.headers.raw_items())
        assert provider.token not in answer, "the token is never echoed back"
        assert provider.token.split(".")[2] not in answer
        assert "bearer" not in answer.lower()

    async def test_a_bearer_subprotocol_is_the_credential_even_beside_a_good_one(self, cluster: Cluster) -> None:
        import websockets

        (user,) = await _accounts(cluster.url(0), "user")
        url = cluster.url(0).replace("http://", "ws://") + f"/ws?token={user.token}"
        offered = [Subprotocol("bookings.v1"), Subprotocol("bearer.garbage")]
        async with websockets.connect(url, subprotocols=offered) as ws:
            with pytest.raises(websockets.ConnectionClosed):
                async with asyncio.timeout(3):
                    await ws.recv()
        assert ws.close_code == 4401

    @pytest.mark.parametrize("fallback", ["query", "header"])
    async def test_bookings_v1_without_a_token_falls_back_to_the_header_or_the_query(
        self, cluster: Cluster, fallback: str
    ) -> None:
        import websockets

        (user,) = await _accounts(cluster.url(0), "user")
        url = cluster.url(0).replace("http://", "ws://") + "/ws"
        url += f"?token={user.token}" if fallback == "query" else ""
        headers = {"Authorization": f"Bearer {user.token}"} if fallback == "header" else None
        async with websockets.connect(url, subprotocols=[Subprotocol("bookings.v1")], additional_headers=headers) as ws:
            async with asyncio.timeout(3):
                ready = json.loads(await ws.recv())
        assert ready["event"] == "stream.ready"
        assert ws.subprotocol == "bookings.v1"

    async def test_the_socket_closes_when_its_token_expires(self, cluster: Cluster) -> None:
        (user,) = await _accounts(cluster.url(0), "user")
        async with EventClient(cluster.url(0), _token(user.id, expires_in=2)) as ws:
            assert await ws.closed(within=5) == 4401

    async def test_a_token_in_the_url_never_reaches_the_log_and_every_line_is_json(self, cluster: Cluster) -> None:
        (user,) = await _accounts(cluster.url(0), "user")
        async with EventClient(cluster.url(0), user.token) as ws:
            await asyncio.sleep(0.3)
        assert ws.ready is not None
        await asyncio.sleep(0.3)  # the lines are written
        log = cluster.servers[0].log()
        assert "/ws?token=[redacted]" in log, "uvicorn's line for the connect is there, redacted"
        assert user.token not in log
        assert user.token.split(".")[2] not in log, "not even the signature"
        for line in log.splitlines():
            assert isinstance(json.loads(line), dict), line

    async def test_a_token_in_the_subprotocol_never_reaches_the_log(self, cluster: Cluster) -> None:
        (user,) = await _accounts(cluster.url(0), "user")
        before = len(cluster.servers[0].log())
        async with EventClient(cluster.url(0), user.token, auth="subprotocol", since=0) as ws:
            await ws.started()
        await asyncio.sleep(0.3)  # the lines are written
        log = cluster.servers[0].log()[before:]
        events = [json.loads(line)["event"] for line in log.splitlines()]
        connects = [event for event in events if event.endswith('"WebSocket /ws?since=0" [accepted]')]
        assert connects, "uvicorn's line for the connect is there, with no token"
        assert user.token not in log
        assert user.token.split(".")[2] not in log, "not even the signature"

    async def test_at_debug_the_handshake_headers_are_logged_with_every_token_redacted(
        self, debug_service: Service
    ) -> None:
        """At DEBUG the websockets library prints every header of a handshake: the token's too, but redacted."""
        (user,) = await _accounts(debug_service.url, "user")
        for auth in ("subprotocol", "header", "query"):
            async with EventClient(debug_service.url, user.token, auth=auth) as ws:
                await ws.started()
        await asyncio.sleep(0.3)  # the lines are written
        log = debug_service.server.log()
        events = [json.loads(line)["event"].lower() for line in log.splitlines()]  # header names as each side sent
        protocol_lines = [event for event in events if "sec-websocket-protocol:" in event]
        assert "< sec-websocket-protocol: bookings.v1, bearer.[redacted]" in protocol_lines, protocol_lines
        assert "> sec-websocket-protocol: bookings.v1" in protocol_lines, "the answer selects bookings.v1 only"
        assert "< authorization: [redacted]" in events
        assert "/ws?token=[redacted]" in log
        assert user.token not in log
        assert user.token.split(".")[2] not in log, "not even the signature"

    async def test_bearer_header_works_for_services(self, cluster: Cluster) -> None:
        import websockets

        user, provider = await _accounts(cluster.url(0), "user", "provider")
        url = cluster.url(1).replace("http://", "ws://") + "/ws"
        async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {provider.token}"}) as ws:
            async with asyncio.timeout(3):
                ready = json.loads(await ws.recv())
            async with httpx.AsyncClient(base_url=cluster.url(0)) as api:
                booking = (await book(api, user, provider)).json()
            async with asyncio.timeout(3):
                message = json.loads(await ws.recv())
        assert ws.subprotocol is None, "none offered, none selected"
        assert ready["event"] == "stream.ready"
        assert message["data"]["id"] == booking["id"]

    async def test_nobody_receives_another_users_events(self, cluster: Cluster) -> None:
        users = await _accounts(cluster.url(0), *["user"] * 5)
        providers = await _accounts(cluster.url(0), *["provider"] * 3)
        rng = random.Random(7)
        clients = [EventClient(cluster.url(i % 2), a.token) for i, a in enumerate(users + providers)]
        for client in clients:
            await client.__aenter__()
        try:
            await asyncio.sleep(0.5)
            expected: dict[str, set[str]] = {a.id: set() for a in users + providers}
            async with httpx.AsyncClient(base_url=cluster.url(0), timeout=30) as api:
                made = 0
                while made < 200:
                    user, provider = rng.choice(users), rng.choice(providers)
                    response = await book(api, user, provider)
                    assert response.status_code == 201, response.text
                    expected[user.id].add(response.json()["id"])
                    expected[provider.id].add(response.json()["id"])
                    made += 1
            for client, who in zip(clients, users + providers, strict=True):
                await client.wait_for(len(expected[who.id]), within=10)
            await asyncio.sleep(0.5)
            for client, who in zip(clients, users + providers, strict=True):
                received = {e["data"]["id"] for e in client.events}
                assert received == expected[who.id], who.role
                assert len(client.events) == len(received), "each event once"
        finally:
            for client in clients:
                await client.__aexit__(None, None, None)


@pytest.fixture
def fresh_cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A cluster of its own, with no instance started yet: the test starts them as it needs."""
    cluster = Cluster.create(tmp_path)
    yield cluster
    cluster.teardown()


class TestNoLostEvents:
    async def test_an_event_committed_just_before_a_crash_is_delivered_once(self, fresh_cluster: Cluster) -> None:
        cluster = fresh_cluster
        crashing = cluster.start("a-crashing", BOOKINGS_FAULT_KILL_AFTER_COMMIT="true")  # leads the relay
        survivor = cluster.start("b")
        user, provider = await _accounts(survivor.url, "user", "provider")
        async with EventClient(survivor.url, provider.token) as ws:
            await asyncio.sleep(0.3)
            slot = future_slot()
            async with httpx.AsyncClient(base_url=crashing.url) as api:
                with pytest.raises(httpx.TransportError):  # the process dies before it can answer
                    await book(api, user, provider, slot)
            assert crashing.process is not None
            assert crashing.process.wait(timeout=5) == -9
            assert cluster.db.count_bookings(provider.id) == 1  # committed
            (event,) = await ws.wait_for(1, within=10)
            assert event["event"] == "booking.created"
            cluster.servers.remove(crashing)
            cluster.start("a-restarted")
            await asyncio.sleep(2)
            assert [e["id"] for e in ws.events] == [event["id"]], "exactly once"

    async def test_an_event_committed_while_redis_is_down_arrives_when_it_is_back(self, fresh_cluster: Cluster) -> None:
        cluster = fresh_cluster
        cluster.start("a")
        cluster.start("b")
        user, provider = await _accounts(cluster.url(0), "user", "provider")
        async with EventClient(cluster.url(1), provider.token) as ws:
            await asyncio.sleep(0.3)
            cluster.redis.stop()
            async with httpx.AsyncClient(base_url=cluster.url(0)) as api:
                created = await book(api, user, provider)
            assert created.status_code == 201  # Redis is not needed to book
            await asyncio.sleep(1.5)
            assert ws.events == []
            cluster.redis = RedisServer(cluster.tmp, port=cluster.redis.port).start()
            (event,) = await ws.wait_for(1, within=15)
            assert event["data"]["id"] == created.json()["id"]
            await asyncio.sleep(1.5)
            assert len(ws.events) == 1, "exactly once"

    async def test_an_instance_paused_across_a_redis_restart_backfills_what_redis_lost(
        self, fresh_cluster: Cluster
    ) -> None:
        """B leads the relay; A's hub is stopped (SIGSTOP) while B publishes four events, Redis restarts empty,
        then A goes on: its live admin socket must still get those four, read back from the database."""
        cluster = fresh_cluster
        leader = cluster.start("b-leader")  # started first, so it holds the relay's lock
        paused = cluster.start("a-paused")
        user, provider = await _accounts(leader.url, "user", "provider")
        admin = await _admin(cluster)
        assert paused.process is not None
        async with EventClient(paused.url, admin.token) as on_a, EventClient(leader.url, admin.token) as on_b:
            await asyncio.sleep(0.3)
            async with httpx.AsyncClient(base_url=leader.url) as api:
                assert (await book(api, user, provider)).status_code == 201
                await on_a.wait_for(1)
                paused.process.send_signal(signal.SIGSTOP)
                try:
                    for _ in range(4):
                        assert (await book(api, user, provider)).status_code == 201
                    await on_b.wait_for(5)  # published: Redis has them
                    cluster.redis.stop()
                    cluster.redis = RedisServer(cluster.tmp, port=cluster.redis.port).start()
                finally:
                    paused.process.send_signal(signal.SIGCONT)
                await asyncio.sleep(1.0)  # A reconnects to the empty Redis
                for _ in range(2):
                    assert (await book(api, user, provider)).status_code == 201
            await on_b.wait_for(7, within=15)
            await on_a.wait_for(7, within=15)
            await asyncio.sleep(0.5)
        assert on_a.ids() == on_b.ids()
        assert on_a.ids() == list(range(on_a.ids()[0], on_a.ids()[0] + 7)), "every event, once, in order"
        assert on_a.close_code is None or on_a.close_code == 1000


@pytest.fixture
def embedded_db(tmp_path: Path) -> ScratchDatabase:
    return create_sqlite(tmp_path)


class TestNoLostEventsEmbedded:
    async def test_a_crash_after_commit_is_made_good_by_the_restarted_process(
        self, embedded_db: ScratchDatabase, tmp_path: Path
    ) -> None:
        env = {**TEST_ENV, "BOOKINGS_DATABASE_URL": embedded_db.url}
        crashing = ServerProcess(env={**env, "BOOKINGS_FAULT_KILL_AFTER_COMMIT": "true"}, log_path=tmp_path / "a.log")
        crashing.start()
        user, provider = await _accounts(crashing.url, "user", "provider")
        async with EventClient(crashing.url, provider.token) as ws:
            await asyncio.sleep(0.2)
            async with httpx.AsyncClient(base_url=crashing.url) as api:
                with pytest.raises(httpx.TransportError):
                    await book(api, user, provider)
            assert await ws.closed() is not None
        assert crashing.process is not None
        assert crashing.process.wait(timeout=5) == -9
        assert ws.events == []  # it died before publishing
        assert embedded_db.count_bookings(provider.id) == 1
        restarted = ServerProcess(env=env, log_path=tmp_path / "b.log", port=crashing.port).start()
        try:
            async with EventClient(restarted.url, provider.token, since=0) as ws:
                (event,) = await ws.wait_for(1)
                await asyncio.sleep(0.5)
                assert len(ws.events) == 1
            assert event["event"] == "booking.created"
        finally:
            restarted.stop()
