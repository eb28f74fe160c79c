"""The SDK's behaviour against a real server: errors, token renewal, pagination, and its retry policy."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from bookings_client import (
    APIConnectionError,
    AsyncBookingsClient,
    AuthenticationError,
    BookingsClient,
    BookingsError,
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    TokenPair,
    ValidationError,
)

from tests.conftest import Service, start_service
from tests.sdk.helpers import PASSWORD, signed_in, signed_in_sync, slot
from tests.support.servers import ServerProcess


@pytest.fixture
def client(sdk_service: Service) -> Iterator[BookingsClient]:
    with BookingsClient(sdk_service.url) as client:
        yield client


def test_errors_carry_the_problem_document(client: BookingsClient) -> None:
    with pytest.raises(AuthenticationError) as unauthenticated:
        client.users.me()
    assert unauthenticated.value.status == 401
    assert unauthenticated.value.title

    provider = signed_in_sync(client, "provider")
    start, end = slot()
    with pytest.raises(PermissionDeniedError) as forbidden:
        client.bookings.create(provider_id=provider.id, start_time=start, end_time=end)
    assert forbidden.value.status == 403

    user = signed_in_sync(client)
    with pytest.raises(NotFoundError) as missing:
        client.bookings.get(uuid.uuid4())
    assert missing.value.status == 404

    with pytest.raises(ValidationError) as invalid:
        client.bookings.create(provider_id=provider.id, start_time=end, end_time=start)
    assert invalid.value.status == 422
    assert [error.field for error in invalid.value.errors] == ["endTime"]
    assert invalid.value.request_id

    with pytest.raises(ConflictError) as taken:
        client.auth.register(email=user.email, password=PASSWORD, name="Again")
    assert taken.value.status == 409
    assert isinstance(taken.value, BookingsError)


@pytest.fixture
def limited_service(tmp_path: Path) -> Iterator[Service]:
    """A server of the test's own that lets each user create two bookings a minute."""
    svc = start_service("sqlite", tmp_path, BOOKINGS_RATE_LIMIT_BOOKINGS="2/minute")
    yield svc
    svc.server.stop()
    svc.db.drop()


def test_a_rate_limit_raises_rate_limited_error_with_the_servers_hint(limited_service: Service) -> None:
    with BookingsClient(limited_service.url) as client:
        provider = signed_in_sync(client, "provider")
        signed_in_sync(client)
        for start, end in (slot(), slot()):
            client.bookings.create(provider_id=provider.id, start_time=start, end_time=end)
        start, end = slot()
        with pytest.raises(RateLimitedError) as limited:
            client.bookings.create(provider_id=provider.id, start_time=start, end_time=end)
        assert limited.value.status == 429
        assert limited.value.retry_after is not None
        assert 1 <= limited.value.retry_after <= 60
        assert limited.value.detail
        # Refused, not retried (a 429 is an answer), and not written.
        assert client.bookings.list().total == 2


def test_arguments_are_checked_before_anything_is_sent(client: BookingsClient) -> None:
    naive = datetime(2030, 1, 1, 9)
    with pytest.raises(InvalidArgumentError, match="start_time must be timezone-aware"):
        client.bookings.create(provider_id=uuid.uuid4(), start_time=naive, end_time=naive + timedelta(hours=1))
    with pytest.raises(InvalidArgumentError, match="booking_id must be a UUID"):
        client.bookings.get("../users/me")


def test_the_access_token_is_renewed_before_it_expires(sdk_service: Service, client: BookingsClient) -> None:
    signed_in_sync(client)
    first = client.auth.tokens
    assert first is not None
    client.auth.use_tokens(first.model_copy(update={"expires_in": 1}))  # as if it were about to expire
    time.sleep(1.0)
    me = client.users.me()
    renewed = client.auth.tokens
    assert renewed is not None
    assert renewed.refresh_token != first.refresh_token
    assert me.email.startswith("sdk-user-")
    # The old refresh token was spent: each works once.
    spent = httpx.post(f"{sdk_service.url}/v1/auth/refresh", json={"refreshToken": first.refresh_token})
    assert spent.status_code == 401


async def test_concurrent_requests_share_one_renewal(sdk_service: Service) -> None:
    async with AsyncBookingsClient(sdk_service.url) as client:
        await signed_in(client)
        first = client.auth.tokens
        assert first is not None
        client.auth.use_tokens(first.model_copy(update={"expires_in": 1}))
        await asyncio.sleep(1.0)
        results = await asyncio.gather(*(client.users.me() for _ in range(8)))
        assert len({user.id for user in results}) == 1
        # Had two tasks spent the same refresh token, the server would have revoked the session.
        assert (await client.auth.refresh()).access_token
        assert (await client.users.me()).id == results[0].id


def test_a_refused_access_token_is_renewed_once_and_the_request_repeated(client: BookingsClient) -> None:
    provider_id = signed_in_sync(client, "provider").id
    signed_in_sync(client)
    real = client.auth.tokens
    assert real is not None
    client.auth.use_tokens(TokenPair(access_token="garbage", refresh_token=real.refresh_token, expires_in=900))
    start, end = slot()
    booking = client.bookings.create(provider_id=provider_id, start_time=start, end_time=end)
    assert booking.status == "confirmed"

    client.auth.use_tokens(TokenPair(access_token="garbage", refresh_token="spent-or-unknown", expires_in=900))
    with pytest.raises(AuthenticationError):
        client.users.me()
    assert client.auth.tokens is None  # the session is over


def test_logout_forgets_and_revokes_the_tokens(sdk_service: Service, client: BookingsClient) -> None:
    signed_in_sync(client)
    tokens = client.auth.tokens
    assert tokens is not None
    client.auth.logout()
    assert client.auth.tokens is None
    refused = httpx.post(f"{sdk_service.url}/v1/auth/refresh", json={"refreshToken": tokens.refresh_token})
    assert refused.status_code == 401


def test_pages_and_iteration(client: BookingsClient) -> None:
    provider_id = signed_in_sync(client, "provider").id
    signed_in_sync(client)
    made = [
        client.bookings.create(provider_id=provider_id, start_time=s, end_time=e) for s, e in (slot() for _ in range(5))
    ]
    second = client.bookings.list(type="upcoming", page=2, limit=2)
    assert (second.page, second.limit, second.total) == (2, 2, 5)
    assert [b.id for b in second.items] == [b.id for b in made[2:4]]
    assert [b.id for b in client.bookings.iter(type="upcoming", limit=2)] == [b.id for b in made]
    assert list(client.bookings.iter(type="past")) == []
    assert client.providers.list(limit=100).total >= 1


def test_reads_are_retried_while_the_server_restarts(restartable_service: Service) -> None:
    svc = restartable_service
    # At least 15 s of retries (half of 0.5 s, 60 times): a loaded machine may take seconds to start a server.
    with BookingsClient(svc.url, max_retries=60, backoff=0.1, max_backoff=0.5) as client:
        me = signed_in_sync(client)
        svc.server.stop()
        restarted = ServerProcess(env=svc.server.env, log_path=svc.server.log_path, port=svc.server.port)
        svc.server = restarted
        starter = threading.Timer(0.5, restarted.start)
        starter.start()
        started = time.monotonic()
        try:
            assert client.users.me().id == me.id
            assert time.monotonic() - started >= 0.5
        finally:
            starter.join()  # until the new server is fully up: the fixture stops it


# A server that misbehaves on purpose, to count the attempts the SDK makes: a real socket, not a mock transport.


class _Unavailable(BaseHTTPRequestHandler):
    hits: list[str]

    def _answer(self) -> None:
        self.hits.append(self.command)
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        body = json.dumps({"title": "Service unavailable", "status": 503, "detail": "down for a test"}).encode()
        self.send_response(503)
        self.send_header("content-type", "application/problem+json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def unavailable() -> Iterator[tuple[str, list[str]]]:
    hits: list[str] = []
    handler = type("Handler", (_Unavailable,), {"hits": hits})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()
    server.server_close()


@pytest.fixture
def hangs_up() -> Iterator[tuple[str, list[int]]]:
    """Accepts each connection, reads the request, and closes without answering."""
    accepted: list[int] = []
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)
                accepted.append(1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", accepted
    stop.set()
    thread.join()
    listener.close()


def test_503_is_retried_for_reads_and_keyed_writes_but_not_for_other_writes(
    unavailable: tuple[str, list[str]],
) -> None:
    url, hits = unavailable
    with BookingsClient(url, max_retries=2, backoff=0.01) as client:
        with pytest.raises(ServerError) as read:
            client.bookings.get(uuid.uuid4())
        assert read.value.status == 503
        assert read.value.detail == "down for a test"
        assert hits == ["GET", "GET", "GET"]
        hits.clear()
        start, end = slot()
        with pytest.raises(ServerError):
            client.bookings.create(provider_id=uuid.uuid4(), start_time=start, end_time=end)
        assert hits == ["POST", "POST", "POST"], "a create carries an Idempotency-Key: safe to repeat"
        hits.clear()
        with pytest.raises(ServerError):
            client.bookings.update(uuid.uuid4(), notes="x")
        assert hits == ["PATCH", "PATCH", "PATCH"]
        hits.clear()
        with pytest.raises(ServerError):
            client.auth.login(email="someone@example.com", password="not-repeated-1A")
        assert hits == ["POST"], "a write without a key is not repeated"
    with BookingsClient(url, max_retries=0) as client, pytest.raises(ServerError):
        client.providers.list()
    assert hits == ["POST", "GET"]


def test_a_dropped_connection_is_retried_for_reads_and_keyed_writes_only(hangs_up: tuple[str, list[int]]) -> None:
    url, accepted = hangs_up
    with BookingsClient(url, max_retries=3, backoff=0.01) as client:
        with pytest.raises(APIConnectionError):
            client.users.me()
        assert len(accepted) == 4
        accepted.clear()
        with pytest.raises(APIConnectionError):
            client.bookings.cancel(uuid.uuid4(), reason="keyed: repeated under the same key")
        assert len(accepted) == 4
        accepted.clear()
        with pytest.raises(APIConnectionError):
            client.auth.login(email="someone@example.com", password="the answer may be lost: not repeated")
        assert len(accepted) == 1


def test_the_history_and_the_pages_walked_by_cursor(client: BookingsClient) -> None:
    provider = signed_in_sync(client, "provider")
    signed_in_sync(client)
    made = []
    for _ in range(3):
        start, end = slot()
        made.append(client.bookings.create(provider_id=provider.id, start_time=start, end_time=end))
    later, later_end = slot()
    moved = client.bookings.reschedule(made[0].id, start_time=later, end_time=later_end, if_match=made[0].version)
    client.bookings.cancel(made[0].id, reason="ill", if_match=moved.version)

    history = client.bookings.history(made[0].id)
    assert [(e.version, e.action) for e in history.items] == [(1, "created"), (2, "rescheduled"), (3, "cancelled")]
    assert history.items[1].changes["startTime"].to is not None
    assert history.items[2].reason == "ill"
    first = client.bookings.history(made[0].id, limit=2)
    assert first.has_more
    assert first.next_cursor is not None
    rest = client.bookings.history(made[0].id, limit=2, cursor=first.next_cursor)
    assert ([e.version for e in rest.items], rest.has_more, rest.total) == ([3], False, None)
    assert sorted(b.id for b in client.bookings.iter(limit=1)) == sorted(b.id for b in made)


def test_the_account_preferences_and_the_calendar_feed(client: BookingsClient) -> None:
    signed_in_sync(client)
    changed = client.users.update_me(time_zone="Europe/London", email_notifications=False)
    assert (changed.time_zone, changed.email_notifications) == ("Europe/London", False)
    assert client.users.update_me(time_zone=None).time_zone is None  # back to the default zone
    assert client.users.me().email_notifications is False
    with pytest.raises(ValidationError):
        client.users.update_me(time_zone="+02:00")
    feed = client.users.calendar_feed()
    assert httpx.get(feed.url, timeout=10).text.startswith("BEGIN:VCALENDAR")
    client.users.revoke_calendar_feed()
    assert httpx.get(feed.url, timeout=10).status_code == 404


async def test_the_async_client_issues_a_calendar_feed(sdk_service: Service) -> None:
    async with AsyncBookingsClient(sdk_service.url) as client:
        await signed_in(client, "provider")
        assert (await client.users.update_me(name="Dr. Ada Byron")).name == "Dr. Ada Byron"
        first, second = await client.users.calendar_feed(), await client.users.calendar_feed()
        assert first.url != second.url
        async with httpx.AsyncClient(timeout=10) as http:
            assert (await http.get(first.url)).status_code == 404  # a new link revokes the old one
            assert (await http.get(second.url)).status_code == 200
