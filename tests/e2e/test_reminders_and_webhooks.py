"""Reminders and webhooks on real processes: due times kept, crashes survived, failures retried and replayed."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest
import redis
from standardwebhooks import Webhook

from tests.conftest import TEST_ENV
from tests.support.api import Account, account, admin_account, iso
from tests.support.databases import ScratchDatabase, create_postgres, create_sqlite
from tests.support.redis_server import RedisServer
from tests.support.servers import ServerProcess, WorkerProcess
from tests.support.webhook_receiver import WebhookReceiver
from tests.support.ws import EventClient

LEAD = 3  # seconds: a booking starting in LEAD + n seconds is reminded in n seconds
JOB_ENV = {
    "BOOKINGS_REMINDER_LEAD_SECONDS": str(LEAD),
    "BOOKINGS_WEBHOOK_ALLOW_PRIVATE": "true",  # the receiver listens on loopback
    "BOOKINGS_JOB_BACKOFF_SECONDS": "0.2",
    "BOOKINGS_WEBHOOK_MAX_ATTEMPTS": "3",
    "BOOKINGS_JOB_LEASE_SECONDS": "3",
    "BOOKINGS_RELAY_POLL_SECONDS": "0.5",
}


@dataclass
class Deployment:
    mode: str
    db: ScratchDatabase
    env: dict[str, str]
    tmp: Path
    api: ServerProcess | None = None
    redis: RedisServer | None = None
    workers: list[WorkerProcess] = field(default_factory=list)

    @property
    def url(self) -> str:
        assert self.api is not None
        return self.api.url

    def start_api(self, **extra: str) -> ServerProcess:
        port = self.api.port if self.api else None
        kwargs = {"port": port} if port else {}
        self.api = ServerProcess(env={**self.env, **extra}, log_path=self.tmp / f"api-{time.time()}.log", **kwargs)
        return self.api.start()

    def start_worker(self) -> WorkerProcess:
        worker = WorkerProcess(env=self.env, log_path=self.tmp / f"worker-{len(self.workers)}.log").start()
        self.workers.append(worker)
        return worker

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        if self.api is not None:
            self.api.stop()
        if self.redis is not None:
            self.redis.stop()
        self.db.drop()


def _deploy(mode: str, tmp: Path) -> Deployment:
    if mode == "embedded":
        db = create_sqlite(tmp)
        deployment = Deployment(mode, db, {**TEST_ENV, **JOB_ENV, "BOOKINGS_DATABASE_URL": db.url}, tmp)
    else:
        db = create_postgres()
        redis_server = RedisServer(tmp).start()
        env = {**TEST_ENV, **JOB_ENV, "BOOKINGS_DATABASE_URL": db.url, "BOOKINGS_REDIS_URL": redis_server.url}
        deployment = Deployment(mode, db, env, tmp, redis=redis_server)
    deployment.start_api()
    if mode == "distributed":
        deployment.start_worker()
    return deployment


@pytest.fixture(scope="module")
def module_embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    deployed = _deploy("embedded", tmp_path_factory.mktemp("embedded"))
    yield deployed
    deployed.stop()


@pytest.fixture(scope="module")
def module_distributed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    deployed = _deploy("distributed", tmp_path_factory.mktemp("distributed"))
    yield deployed
    deployed.stop()


def _emptied_after(deployed: Deployment) -> Iterator[Deployment]:
    """The module's deployment, for a test that kills, stops or restarts none of its parts: its database is emptied
    after the test (accounts, bookings, jobs, webhooks), so no test sees what another left."""
    yield deployed
    deployed.db.truncate()


@pytest.fixture(params=["embedded", "distributed"])
def deployment(request: pytest.FixtureRequest) -> Iterator[Deployment]:
    yield from _emptied_after(request.getfixturevalue(f"module_{request.param}"))


@pytest.fixture
def shared_distributed(module_distributed: Deployment) -> Iterator[Deployment]:
    yield from _emptied_after(module_distributed)


@pytest.fixture
def shared_embedded(module_embedded: Deployment) -> Iterator[Deployment]:
    yield from _emptied_after(module_embedded)


@pytest.fixture
def distributed(tmp_path: Path) -> Iterator[Deployment]:
    """A deployment of the test's own, for a test that kills, stops or restarts one of its parts."""
    deployed = _deploy("distributed", tmp_path)
    yield deployed
    deployed.stop()


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Deployment]:
    """The embedded service of the test's own, for a test that kills it."""
    deployed = _deploy("embedded", tmp_path)
    yield deployed
    deployed.stop()


@pytest.fixture
async def api(deployment: Deployment) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=deployment.url, timeout=30) as client:
        yield client


def _starting_in(seconds: float, minutes: int = 30) -> tuple[str, str, datetime]:
    """A slot whose reminder is due ``seconds`` from now; returns (start, end, due)."""
    start = (datetime.now(UTC) + timedelta(seconds=LEAD + seconds)).replace(microsecond=0) + timedelta(seconds=1)
    return iso(start), iso(start + timedelta(minutes=minutes)), start - timedelta(seconds=LEAD)


async def _book(client: httpx.AsyncClient, user: Account, provider: Account, start: str, end: str) -> dict[str, str]:
    response = await client.post(
        "/v1/bookings", json={"providerId": provider.id, "startTime": start, "endTime": end}, headers=user.headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, str] = response.json()
    return body


async def _webhook(client: httpx.AsyncClient, admin: Account, url: str, *types: str) -> dict[str, str]:
    response = await client.post("/v1/webhooks", json={"url": url, "eventTypes": list(types)}, headers=admin.headers)
    assert response.status_code == 201, response.text
    body: dict[str, str] = response.json()
    return body


def _reminders(events: list[dict[str, object]]) -> list[dict[str, object]]:
    return [e for e in events if e["event"] == "booking.reminder"]


async def _until(predicate: object, within: float) -> None:
    deadline = time.monotonic() + within
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


class TestReminderDelivery:
    async def test_reminder_reaches_user_provider_and_webhook_within_a_second_of_due(
        self, deployment: Deployment, api: httpx.AsyncClient
    ) -> None:
        user, provider = await account(api), await account(api, "provider")
        admin = await admin_account(api, deployment.db.url, deployment.env["BOOKINGS_JWT_KEYS"])
        with WebhookReceiver() as receiver:
            await _webhook(api, admin, receiver.url, "booking.reminder")
            async with (
                EventClient(deployment.url, user.token) as user_ws,
                EventClient(deployment.url, provider.token) as provider_ws,
            ):
                await asyncio.sleep(0.3)
                start, end, due = _starting_in(2)
                booking = await _book(api, user, provider, start, end)
                await _until(lambda: _reminders(user_ws.events) and _reminders(provider_ws.events), 6)
                arrived = time.time()
                await _until(lambda: receiver.deliveries, 4)
            for ws in (user_ws, provider_ws):
                (reminder,) = _reminders(ws.events)
                assert reminder["data"]["id"] == booking["id"]  # type: ignore[index]
            assert arrived - due.timestamp() <= 1.0, f"reminder {arrived - due.timestamp():.2f}s late"
            (delivery,) = receiver.deliveries
            assert delivery.received_at - due.timestamp() <= 1.0
            assert delivery.received_at >= due.timestamp() - 0.05, "not before it is due"
            assert json.loads(delivery.body)["event"] == "booking.reminder"

    async def test_cancel_removes_and_reschedule_moves_the_reminder(
        self, deployment: Deployment, api: httpx.AsyncClient
    ) -> None:
        user, first, second = await account(api), await account(api, "provider"), await account(api, "provider")
        async with EventClient(deployment.url, user.token) as ws:
            start, end, old_due = _starting_in(2)
            cancelled = await _book(api, user, first, start, end)
            moved = await _book(api, user, second, start, end)
            await api.post(f"/v1/bookings/{cancelled['id']}/cancel", headers=user.headers)
            new_start, new_end, new_due = _starting_in(5)
            patched = await api.patch(
                f"/v1/bookings/{moved['id']}", json={"startTime": new_start, "endTime": new_end}, headers=user.headers
            )
            assert patched.status_code == 200, patched.text
            await _until(lambda: _reminders(ws.events), 10)
            arrived = time.time()
            await asyncio.sleep(1.5)
        reminders = _reminders(ws.events)
        assert [r["data"]["id"] for r in reminders] == [moved["id"]]  # type: ignore[index]
        assert reminders[0]["data"]["startTime"] == new_start  # type: ignore[index]
        assert arrived >= new_due.timestamp() - 0.05, "nothing fired at the old time"
        assert new_due > old_due


class TestRemindersSurviveCrashes:
    async def test_worker_killed_while_reminders_are_due_delivers_each_once(self, distributed: Deployment) -> None:
        async with httpx.AsyncClient(base_url=distributed.url, timeout=30) as api:
            user = await account(api)
            providers = list(await asyncio.gather(*(account(api, "provider") for _ in range(20))))
            admin = await admin_account(api, distributed.db.url, distributed.env["BOOKINGS_JWT_KEYS"])
            async with EventClient(distributed.url, admin.token) as ws:
                start, end, _ = _starting_in(2)
                booked = [(await _book(api, user, provider, start, end))["id"] for provider in providers]
                await asyncio.sleep(2.1)  # due now: the worker is claiming and running them
                distributed.workers[0].kill()
                await asyncio.sleep(1.0)
                distributed.start_worker()
                await _until(lambda: len(_reminders(ws.events)) >= 20, 15)
                await asyncio.sleep(LEAD + 1.0)  # long enough for any expired lease to be re-run
            reminders = _reminders(ws.events)
            assert sorted(r["data"]["id"] for r in reminders) == sorted(booked)  # type: ignore[index]
            assert len({r["id"] for r in reminders}) == len(reminders) == 20

    async def test_redis_flushed_or_restarted_loses_no_reminder(self, distributed: Deployment) -> None:
        assert distributed.redis is not None
        async with httpx.AsyncClient(base_url=distributed.url, timeout=30) as api:
            user = await account(api)
            providers = [await account(api, "provider") for _ in range(3)]
            async with EventClient(distributed.url, user.token) as ws:
                start, end, _ = _starting_in(2)
                booked = [(await _book(api, user, p, start, end))["id"] for p in providers[:2]]
                redis.Redis.from_url(distributed.redis.url).flushall()  # before they are due
                await _until(lambda: len(_reminders(ws.events)) >= 2, 8)
                distributed.redis.stop()
                distributed.redis = RedisServer(distributed.tmp, port=distributed.redis.port).start()
                start, end, _ = _starting_in(2)
                booked.append((await _book(api, user, providers[2], start, end))["id"])
                await _until(lambda: len(_reminders(ws.events)) >= 3, 10)
                await asyncio.sleep(1.0)
        assert sorted(r["data"]["id"] for r in _reminders(ws.events)) == sorted(booked)  # type: ignore[index]

    async def test_embedded_service_killed_sends_overdue_reminders_once_after_restart(
        self, embedded: Deployment
    ) -> None:
        async with httpx.AsyncClient(base_url=embedded.url, timeout=30) as api:
            user, provider = await account(api), await account(api, "provider")
            start, end, due = _starting_in(1)
            booking = await _book(api, user, provider, start, end)
        assert embedded.api is not None
        assert embedded.api.process is not None
        embedded.api.process.kill()
        embedded.api.process.wait()
        await asyncio.sleep(max(0.0, due.timestamp() - time.time()) + 1.0)  # it is now overdue
        embedded.start_api()
        async with EventClient(embedded.url, user.token, since=0) as ws:
            await _until(lambda: _reminders(ws.events), 8)
            await asyncio.sleep(1.5)
        reminders = _reminders(ws.events)
        assert [r["data"]["id"] for r in reminders] == [booking["id"]]  # type: ignore[index]


class TestRescheduleWhileTheReminderRuns:
    """A reschedule replaces the booking's live reminder even when a worker holds it, and never answers 500."""

    async def test_reschedules_racing_their_due_reminders_all_succeed(self, shared_distributed: Deployment) -> None:
        async with httpx.AsyncClient(base_url=shared_distributed.url, timeout=30) as api:
            users = [await account(api) for _ in range(5)]
            providers = [await account(api, "provider") for _ in users]
            admin = await admin_account(api, shared_distributed.db.url, shared_distributed.env["BOOKINGS_JWT_KEYS"])
            async with EventClient(shared_distributed.url, admin.token) as ws:

                async def keep_moving(user: Account, provider: Account) -> tuple[str, list[int], str]:
                    """Book, then move the booking 12 times, always inside the lead: each reminder is due at once."""
                    start, end, _ = _starting_in(-1)
                    booking = await _book(api, user, provider, start, end)
                    statuses, last = [], start
                    for _ in range(12):
                        moved = datetime.now(UTC) + timedelta(seconds=2)
                        body = {"startTime": iso(moved), "endTime": iso(moved + timedelta(minutes=30))}
                        response = await api.patch(f"/v1/bookings/{booking['id']}", json=body, headers=user.headers)
                        statuses.append(response.status_code)
                        last = response.json().get("startTime", last)
                    return booking["id"], statuses, last

                moves = await asyncio.gather(*(keep_moving(u, p) for u, p in zip(users, providers, strict=True)))
                finals = {booking: last for booking, _, last in moves}
                await _until(
                    lambda: {r["data"]["startTime"] for r in _reminders(ws.events)} >= set(finals.values()), 10
                )
                await asyncio.sleep(1.0)
        assert [s for _, statuses, _ in moves for s in statuses] == [200] * 60
        reminders = _reminders(ws.events)
        for booking, last in finals.items():
            times = [r["data"]["startTime"] for r in reminders if r["data"]["id"] == booking]  # type: ignore[index]
            assert times.count(last) == 1, "the reminder of the booking's time fires once"
            assert len(times) == len(set(times)), "no time is reminded twice"

    async def test_a_reschedule_while_a_killed_workers_lease_holds_the_reminder_succeeds(
        self, distributed: Deployment
    ) -> None:
        distributed.workers[0].stop()
        async with httpx.AsyncClient(base_url=distributed.url, timeout=30) as api:
            user, provider = await account(api), await account(api, "provider")
            start, end, _ = _starting_in(0.5)
            booking = await _book(api, user, provider, start, end)
            # What a worker SIGKILLed in the middle of the reminder leaves behind: the job running, its lease
            # good for another minute.
            with psycopg.connect(distributed.db.url, autocommit=True) as conn:
                leased = conn.execute(
                    "UPDATE jobs SET state = 'running', locked_by = 'killed-worker', attempts = 1, "
                    "locked_until = now() + interval '60 seconds' WHERE dedup_key = %s RETURNING id",
                    (f"reminder:{booking['id']}",),
                ).fetchall()
            assert len(leased) == 1
            async with EventClient(distributed.url, user.token) as ws:
                new_start, new_end, _ = _starting_in(1.5)
                body = {"startTime": new_start, "endTime": new_end}
                moved = await api.patch(f"/v1/bookings/{booking['id']}", json=body, headers=user.headers)
                assert moved.status_code == 200, moved.text
                distributed.start_worker()
                await _until(lambda: _reminders(ws.events), 10)
                await asyncio.sleep(1.0)
        assert [r["data"]["startTime"] for r in _reminders(ws.events)] == [new_start]  # type: ignore[index]
        with psycopg.connect(distributed.db.url) as conn:
            states = conn.execute(
                "SELECT state FROM jobs WHERE dedup_key = %s ORDER BY id", (f"reminder:{booking['id']}",)
            )
            assert [state for (state,) in states] == ["cancelled", "done"]


class TestWebhookRetries:
    async def test_a_receiver_failing_twice_gets_the_third_attempt_signed_and_with_the_same_id(
        self, shared_embedded: Deployment
    ) -> None:
        async with httpx.AsyncClient(base_url=shared_embedded.url, timeout=30) as api:
            user, provider = await account(api), await account(api, "provider")
            admin = await admin_account(api, shared_embedded.db.url, shared_embedded.env["BOOKINGS_JWT_KEYS"])
            with WebhookReceiver(fail_first=2) as receiver:
                hook = await _webhook(api, admin, receiver.url, "booking.created")
                assert hook["secret"].startswith("whsec_")
                assert "secret" not in (await api.get("/v1/webhooks", headers=admin.headers)).json()["items"][0]
                start, end, _ = _starting_in(600)
                booking = await _book(api, user, provider, start, end)
                await _until(lambda: receiver.deliveries, 10)
                (delivery,) = receiver.deliveries
                assert receiver.attempts == 3
                payload = Webhook(hook["secret"]).verify(delivery.body, delivery.headers)
                assert payload["event"] == "booking.created"
                assert payload["data"]["id"] == booking["id"]
                assert delivery.headers["webhook-id"].startswith("msg_")

    async def test_an_always_failing_receiver_ends_in_dead_letters_and_replays_after_recovery(
        self, shared_embedded: Deployment
    ) -> None:
        async with httpx.AsyncClient(base_url=shared_embedded.url, timeout=30) as api:
            user, provider = await account(api), await account(api, "provider")
            admin = await admin_account(api, shared_embedded.db.url, shared_embedded.env["BOOKINGS_JWT_KEYS"])
            with WebhookReceiver(always_fail=True) as receiver:
                hook = await _webhook(api, admin, receiver.url, "booking.created")
                start, end, _ = _starting_in(600)
                booking = await _book(api, user, provider, start, end)

                async def dead() -> list[dict[str, object]]:
                    page = (await api.get("/v1/admin/dead-letters", headers=admin.headers)).json()
                    return page["items"]  # type: ignore[no-any-return]

                deadline = time.monotonic() + 10
                while not (letters := await dead()):
                    assert time.monotonic() < deadline, "no dead letter"
                    await asyncio.sleep(0.1)
                (letter,) = letters
                assert receiver.attempts == 3
                assert letter["attempts"] == letter["maxAttempts"] == 3
                assert "HTTP 500" in str(letter["lastError"])
                assert letter["kind"] == "webhook"
                for who in (user, provider):
                    assert (await api.get("/v1/admin/dead-letters", headers=who.headers)).status_code == 403
                    retry = await api.post(f"/v1/admin/dead-letters/{letter['id']}/retry", headers=who.headers)
                    assert retry.status_code == 403
                receiver.always_fail = False
                retried = await api.post(f"/v1/admin/dead-letters/{letter['id']}/retry", headers=admin.headers)
                assert retried.status_code == 202
                await _until(lambda: receiver.deliveries, 5)
                await asyncio.sleep(0.5)
                assert len(receiver.deliveries) == 1
                delivered = Webhook(hook["secret"]).verify(receiver.deliveries[0].body, receiver.deliveries[0].headers)
                assert delivered["data"]["id"] == booking["id"]
                assert await dead() == []

    async def test_a_rotated_secret_signs_with_both_keys(self, shared_embedded: Deployment) -> None:
        async with httpx.AsyncClient(base_url=shared_embedded.url, timeout=30) as api:
            user, provider = await account(api), await account(api, "provider")
            admin = await admin_account(api, shared_embedded.db.url, shared_embedded.env["BOOKINGS_JWT_KEYS"])
            with WebhookReceiver() as receiver:
                hook = await _webhook(api, admin, receiver.url, "booking.created")
                rotated = (await api.post(f"/v1/webhooks/{hook['id']}/rotate-secret", headers=admin.headers)).json()
                assert rotated["secret"] != hook["secret"]
                start, end, _ = _starting_in(600)
                await _book(api, user, provider, start, end)
                await _until(lambda: receiver.deliveries, 5)
                (delivery,) = receiver.deliveries
                assert len(delivery.headers["webhook-signature"].split(" ")) == 2
                for secret in (hook["secret"], rotated["secret"]):
                    Webhook(secret).verify(delivery.body, delivery.headers)
