"""Writes are retried with one ``Idempotency-Key`` per call, and so happen once, whatever the network loses.

Against the real server, through ``tests/support/flaky_proxy.py``: a fault injector on loopback that forwards each
request to the server, waits for the server's whole answer (the change is committed by then) and, for the requests
a rule names, closes the SDK's connection instead of passing the answer on. The SDK must repeat the request with
the same key, the server must answer the repeat with the stored outcome (``Idempotent-Replayed: true``), and the
booking must exist, or have changed, exactly once.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypedDict

import httpx
import pytest
from bookings_client import (
    APIConnectionError,
    AsyncBookingsClient,
    Booking,
    BookingsClient,
    ConflictError,
    IdempotencyKeyInUseError,
    IdempotencyKeyReusedError,
    InvalidArgumentError,
    PreconditionFailedError,
    ServerError,
    ValidationError,
)

from tests.conftest import Service
from tests.sdk.helpers import signed_in, signed_in_sync, slot
from tests.support.flaky_proxy import Drop, Exchange, FlakyProxy

CREATE = "/v1/bookings"
ONE = r"/v1/bookings/[0-9a-f-]{36}"
CANCEL = ONE + "/cancel"


class Backoff(TypedDict):
    backoff: float
    max_backoff: float


# Quick retries: the drops are deliberate, there is nothing to wait for.
FAST = Backoff(backoff=0.01, max_backoff=0.1)

MakeProxy = Callable[..., FlakyProxy]


@pytest.fixture
def proxy_to(sdk_service: Service) -> Iterator[MakeProxy]:
    """``proxy_to(Drop(...), ...)``: a started fault-injecting proxy in front of the shared server."""
    made: list[FlakyProxy] = []

    def make(*rules: Drop) -> FlakyProxy:
        proxy = FlakyProxy(sdk_service.url, rules).start()
        made.append(proxy)
        return proxy

    yield make
    for proxy in made:
        proxy.stop()


def key_of(exchange: Exchange) -> str:
    return exchange.request_headers["idempotency-key"]


def assert_one_key_and_a_replay(attempts: list[Exchange], *, drops: int = 1) -> str:
    """The attempts of one call: ``drops`` answers lost, then a replay of the first outcome, all under one key."""
    assert len(attempts) == drops + 1, [(a.status, a.dropped) for a in attempts]
    keys = {key_of(a) for a in attempts}
    assert len(keys) == 1, keys
    (key,) = keys
    assert uuid.UUID(key).version == 4
    assert [a.dropped for a in attempts] == [True] * drops + [False]
    first, *repeats = attempts
    assert not first.replayed  # the change itself, committed, its answer lost
    assert all(a.replayed for a in repeats)
    assert {a.status for a in attempts} == {first.status}
    assert {a.response_body for a in attempts} == {first.response_body}  # the same answer, replayed
    return key


def server_side(service: Service, token: str, path: str) -> Any:
    """Read from the server directly, not through the proxy."""
    response = httpx.get(f"{service.url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def access_token(client: AsyncBookingsClient | BookingsClient) -> str:
    tokens = client.auth.tokens
    assert tokens is not None
    return tokens.access_token


async def test_create_is_retried_through_a_drop_after_the_commit_and_books_once(
    sdk_service: Service, proxy_to: MakeProxy
) -> None:
    proxy = proxy_to(Drop("POST", CREATE))
    async with AsyncBookingsClient(proxy.url, **FAST) as client:
        provider = await signed_in(client, "provider")
        await signed_in(client)
        start, end = slot()
        booking = await client.bookings.create(provider_id=provider.id, start_time=start, end_time=end, notes="once")
        token = access_token(client)

    assert booking.status == "confirmed"
    assert booking.notes == "once"
    attempts = proxy.matching("POST", CREATE)
    assert_one_key_and_a_replay(attempts)
    assert attempts[0].status == 201
    assert json.loads(attempts[0].response_body)["id"] == str(booking.id)
    listed = server_side(sdk_service, token, "/v1/bookings")
    assert listed["total"] == 1
    assert [item["id"] for item in listed["items"]] == [str(booking.id)]


async def test_create_survives_two_resets_in_a_row(sdk_service: Service, proxy_to: MakeProxy) -> None:
    proxy = proxy_to(Drop("POST", CREATE, times=2, how="reset"))
    async with AsyncBookingsClient(proxy.url, max_retries=3, **FAST) as client:
        provider = await signed_in(client, "provider")
        await signed_in(client)
        start, end = slot()
        booking = await client.bookings.create(provider_id=provider.id, start_time=start, end_time=end)
        token = access_token(client)
    assert_one_key_and_a_replay(proxy.matching("POST", CREATE), drops=2)
    assert server_side(sdk_service, token, "/v1/bookings")["total"] == 1
    assert server_side(sdk_service, token, f"/v1/bookings/{booking.id}")["version"] == 1


async def test_cancel_is_retried_through_a_drop_after_the_commit_and_cancels_once(
    sdk_service: Service, proxy_to: MakeProxy
) -> None:
    proxy = proxy_to(Drop("POST", CANCEL))
    async with AsyncBookingsClient(proxy.url, **FAST) as client:
        provider = await signed_in(client, "provider")
        await signed_in(client)
        start, end = slot()
        booking = await client.bookings.create(provider_id=provider.id, start_time=start, end_time=end)
        cancelled = await client.bookings.cancel(booking.id, reason="plans changed")
        token = access_token(client)

    assert (cancelled.status, cancelled.cancel_reason, cancelled.version) == ("cancelled", "plans changed", 2)
    assert_one_key_and_a_replay(proxy.matching("POST", CANCEL))
    stored = server_side(sdk_service, token, f"/v1/bookings/{booking.id}")
    assert (stored["status"], stored["version"]) == ("cancelled", 2)


async def test_reschedule_is_retried_through_a_drop_after_the_commit_and_moves_once(
    sdk_service: Service, proxy_to: MakeProxy
) -> None:
    proxy = proxy_to(Drop("PATCH", ONE))
    async with AsyncBookingsClient(proxy.url, **FAST) as client:
        provider = await signed_in(client, "provider")
        await signed_in(client)
        start, end = slot()
        booking = await client.bookings.create(provider_id=provider.id, start_time=start, end_time=end)
        later, later_end = slot()
        moved = await client.bookings.reschedule(
            booking.id, start_time=later, end_time=later_end, if_match=booking.version
        )
        token = access_token(client)

    assert (moved.start_time, moved.end_time, moved.version) == (later, later_end, 2)
    attempts = proxy.matching("PATCH", ONE)
    assert_one_key_and_a_replay(attempts)
    assert {a.request_headers["if-match"] for a in attempts} == {'"1"'}
    # Applied twice, the version would be 3 (or the repeat, sent with If-Match "1", a 412).
    assert server_side(sdk_service, token, f"/v1/bookings/{booking.id}")["version"] == 2


def test_the_blocking_client_retries_create_and_cancel_the_same_way(sdk_service: Service, proxy_to: MakeProxy) -> None:
    proxy = proxy_to(Drop("POST", CREATE), Drop("POST", CANCEL, how="reset"))
    with BookingsClient(proxy.url, **FAST) as client:
        provider = signed_in_sync(client, "provider")
        signed_in_sync(client)
        start, end = slot()
        booking = client.bookings.create(provider_id=provider.id, start_time=start, end_time=end)
        cancelled = client.bookings.cancel(booking.id)
        token = access_token(client)

    assert cancelled.status == "cancelled"
    create_key = assert_one_key_and_a_replay(proxy.matching("POST", CREATE))
    cancel_key = assert_one_key_and_a_replay(proxy.matching("POST", CANCEL))
    assert create_key != cancel_key
    listed = server_side(sdk_service, token, "/v1/bookings")
    assert listed["total"] == 1
    assert listed["items"][0]["status"] == "cancelled"


async def test_each_call_sends_a_key_of_its_own(proxy_to: MakeProxy) -> None:
    proxy = proxy_to()
    async with AsyncBookingsClient(proxy.url) as client:
        provider = await signed_in(client, "provider")
        await signed_in(client)
        made: list[Booking] = []
        for start, end in (slot(), slot()):
            made.append(await client.bookings.create(provider_id=provider.id, start_time=start, end_time=end))
        await client.bookings.update(made[0].id, notes="a note")
        await client.bookings.cancel(made[1].id)

    writes = [e for e in proxy.exchanges if e.method in {"POST", "PATCH"} and e.path.startswith("/v1/bookings")]
    assert len(writes) == 4
    keys = [key_of(e) for e in writes]
    assert len(set(keys)) == 4, keys
    assert all(uuid.UUID(key).version == 4 for key in keys)
    assert not any(e.replayed or e.dropped for e in writes)
    # Requests without a key stay without one.
    assert all("idempotency-key" not in e.request_headers for e in proxy.exchanges if e.path.startswith("/v1/auth"))


async def test_a_callers_own_key_spans_calls_after_the_retries_ran_out(
    sdk_service: Service, proxy_to: MakeProxy
) -> None:
    proxy = proxy_to(Drop("POST", CREATE, times=2))
    async with AsyncBookingsClient(proxy.url, max_retries=1, **FAST) as client:
        provider = await signed_in(client, "provider")
        await signed_in(client)
        start, end = slot()
        key = f"order-{uuid.uuid4().hex}"
        with pytest.raises(APIConnectionError):
            await client.bookings.create(provider_id=provider.id, start_time=start, end_time=end, idempotency_key=key)
        # Later (another process, say), the same request with the same key: the booking made the first time.
        booking = await client.bookings.create(
            provider_id=provider.id, start_time=start, end_time=end, idempotency_key=key
        )
        token = access_token(client)

    attempts = proxy.matching("POST", CREATE)
    assert [key_of(a) for a in attempts] == [key] * 3
    assert [(a.dropped, a.replayed) for a in attempts] == [(True, False), (True, True), (False, True)]
    assert json.loads(attempts[0].response_body)["id"] == str(booking.id)
    assert server_side(sdk_service, token, "/v1/bookings")["total"] == 1


async def test_a_key_reused_for_another_request_is_refused(sdk_service: Service) -> None:
    async with AsyncBookingsClient(sdk_service.url) as client:
        provider = await signed_in(client, "provider")
        await signed_in(client)
        start, end = slot()
        key = f"reused-{uuid.uuid4().hex}"
        first = await client.bookings.create(
            provider_id=provider.id, start_time=start, end_time=end, idempotency_key=key
        )
        again = await client.bookings.create(
            provider_id=provider.id, start_time=start, end_time=end, idempotency_key=key
        )
        assert again == first  # the same request: the stored answer
        with pytest.raises(IdempotencyKeyReusedError) as reused:
            await client.bookings.create(
                provider_id=provider.id, start_time=start, end_time=end, notes="other", idempotency_key=key
            )
        assert isinstance(reused.value, ValidationError)
        assert (reused.value.status, reused.value.type) == (422, "/problems/idempotency-key-reused")
        assert (await client.bookings.list()).total == 1


async def test_a_stale_if_match_is_a_precondition_failure_and_writes_nothing(sdk_service: Service) -> None:
    async with AsyncBookingsClient(sdk_service.url) as client:
        provider = await signed_in(client, "provider")
        await signed_in(client)
        start, end = slot()
        booking = await client.bookings.create(provider_id=provider.id, start_time=start, end_time=end)
        noted = await client.bookings.update(booking.id, notes="v2", if_match='"1"')
        assert noted.version == 2
        with pytest.raises(PreconditionFailedError) as stale:
            await client.bookings.cancel(booking.id, if_match=booking.version)
        assert (stale.value.status, stale.value.type, stale.value.etag) == (412, "/problems/precondition-failed", '"2"')
        with pytest.raises(PreconditionFailedError):
            await client.bookings.reschedule(
                booking.id, start_time=start, end_time=end + timedelta(minutes=30), if_match=1
            )
        current = await client.bookings.get(booking.id)
        assert (current.status, current.version, current.end_time) == ("confirmed", 2, end)
        assert (await client.bookings.cancel(booking.id, if_match=current.version)).status == "cancelled"


def test_bad_keys_and_if_match_values_are_refused_before_anything_is_sent() -> None:
    start, end = slot()
    with BookingsClient("http://127.0.0.1:9") as client:  # nothing listens there: nothing may be sent
        for bad in ("", "has space", "é", "x" * 256):
            with pytest.raises(InvalidArgumentError, match="idempotency_key"):
                client.bookings.create(provider_id=uuid.uuid4(), start_time=start, end_time=end, idempotency_key=bad)
        with pytest.raises(InvalidArgumentError, match="idempotency_key"):
            client.bookings.cancel(uuid.uuid4(), idempotency_key="tab\there")
        for wrong in (True, 1.5, "", "a\r\nb"):
            with pytest.raises(InvalidArgumentError, match="if_match"):
                client.bookings.update(uuid.uuid4(), notes=None, if_match=wrong)  # type: ignore[arg-type]


# A server that answers on purpose what the real one answers only under load or concurrency (a 503 from a lost
# database, a 409 while the first request with the key still runs on PostgreSQL): a real socket, scripted.


def _booking_json() -> dict[str, Any]:
    start, end = slot()
    return {
        "id": str(uuid.uuid4()),
        "userId": str(uuid.uuid4()),
        "providerId": str(uuid.uuid4()),
        "startTime": start.isoformat(),
        "endTime": end.isoformat(),
        "status": "confirmed",
        "notes": None,
        "cancelReason": None,
        "version": 1,
        "createdAt": start.isoformat(),
        "updatedAt": start.isoformat(),
    }


Answer = tuple[int, dict[str, str], dict[str, Any]]
UNAVAILABLE: Answer = (503, {}, {"type": "/problems/service-unavailable", "title": "Unavailable", "status": 503})
IN_USE = {"type": "/problems/idempotency-key-in-use", "title": "Idempotency key in use", "status": 409}
SLOT_TAKEN: Answer = (409, {}, {"type": "/problems/slot-taken", "title": "Slot taken", "status": 409})


class Scripted:
    """Answers each request with the next of ``answers`` (the last one again once they run out)."""

    def __init__(self, answers: list[Answer]) -> None:
        self.answers = answers
        self.seen: list[tuple[str, float, dict[str, str]]] = []
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                scripted.seen.append((self.command, time.monotonic(), {k.lower(): v for k, v in self.headers.items()}))
                status, headers, payload = scripted.answers[min(len(scripted.seen), len(scripted.answers)) - 1]
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json" if status < 400 else "application/problem+json")
                self.send_header("content-length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_PATCH = do_POST

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def keys(self) -> list[str | None]:
        return [headers.get("idempotency-key") for _, _, headers in self.seen]


@pytest.fixture
def scripted() -> Iterator[Callable[..., Scripted]]:
    made: list[Scripted] = []

    def make(*answers: Answer) -> Scripted:
        server = Scripted(list(answers))
        server.thread.start()
        made.append(server)
        return server

    yield make
    for server in made:
        server.server.shutdown()
        server.server.server_close()
        server.thread.join(timeout=10)


def test_503_and_key_in_use_are_retried_with_the_same_key_after_retry_after(
    scripted: Callable[..., Scripted],
) -> None:
    server = scripted(UNAVAILABLE, (409, {"Retry-After": "1"}, IN_USE), (201, {}, _booking_json()))
    start, end = slot()
    with BookingsClient(server.url, max_retries=3, **FAST) as client:
        booking = client.bookings.create(provider_id=uuid.uuid4(), start_time=start, end_time=end)
    assert booking.status == "confirmed"
    assert len(server.seen) == 3
    assert len(set(server.keys)) == 1
    assert server.keys[0] is not None
    # Retry-After: 1, capped at max_backoff (0.1 s): at least that long before the third attempt.
    assert server.seen[2][1] - server.seen[1][1] >= 0.09


async def test_retry_after_is_honoured_up_to_max_backoff(scripted: Callable[..., Scripted]) -> None:
    honoured = scripted((409, {"Retry-After": "1"}, IN_USE), (200, {}, _booking_json()))
    async with AsyncBookingsClient(honoured.url, backoff=0.01, max_backoff=8) as client:
        await client.bookings.cancel(uuid.uuid4())
    assert len(honoured.seen) == 2
    assert honoured.seen[1][1] - honoured.seen[0][1] >= 0.95
    capped = scripted((409, {"Retry-After": "3600"}, IN_USE), (200, {}, _booking_json()))
    async with AsyncBookingsClient(capped.url, backoff=0.01, max_backoff=0.2) as client:
        await client.bookings.update(uuid.uuid4(), notes="x")
    assert len(capped.seen) == 2
    assert capped.seen[1][1] - capped.seen[0][1] < 5


def test_the_retries_are_bounded_and_other_conflicts_are_not_retried(scripted: Callable[..., Scripted]) -> None:
    busy = scripted((409, {"Retry-After": "0"}, IN_USE))
    start, end = slot()
    with BookingsClient(busy.url, max_retries=2, **FAST) as client, pytest.raises(IdempotencyKeyInUseError) as in_use:
        client.bookings.create(provider_id=uuid.uuid4(), start_time=start, end_time=end)
    assert isinstance(in_use.value, ConflictError)
    assert in_use.value.retry_after == 0
    assert len(busy.seen) == 3
    assert len(set(busy.keys)) == 1

    taken = scripted(SLOT_TAKEN)
    with BookingsClient(taken.url, max_retries=2, **FAST) as client, pytest.raises(ConflictError) as conflict:
        client.bookings.create(provider_id=uuid.uuid4(), start_time=start, end_time=end)
    assert not isinstance(conflict.value, IdempotencyKeyInUseError)
    assert len(taken.seen) == 1

    login = scripted(UNAVAILABLE)  # a POST without a key: not repeated after an answer
    with BookingsClient(login.url, max_retries=2, **FAST) as client, pytest.raises(ServerError):
        client.auth.login(email="a@example.com", password="x")
    assert len(login.seen) == 1
    assert login.keys == [None]
