"""``AsyncBookingsClient.events()`` against real servers: live delivery, a server restart, an expired token."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TypeVar
from uuid import UUID

import pytest
from bookings_client import AsyncBookingsClient, Booking, Event, EventStream, TokenPair

from tests.conftest import Service
from tests.sdk.helpers import PASSWORD, signed_in, slot
from tests.support.servers import ServerProcess

# Reconnect quickly in tests: the first retries come after 0.05-0.1 s, none waits more than 0.5 s.
FAST = {"backoff": 0.1, "max_backoff": 0.5}
T = TypeVar("T")


async def next_event(stream: EventStream, within: float) -> Event:
    return await asyncio.wait_for(anext(stream), timeout=within)


async def subscribed(stream: EventStream) -> None:
    """Wait until the server has subscribed the stream (its ``stream.ready`` arrived)."""
    await asyncio.wait_for(stream.connected.wait(), timeout=10)


async def book(client: AsyncBookingsClient, provider_id: UUID) -> Booking:
    """A booking of a fresh slot with ``provider_id``, made by ``client``'s user."""
    start, end = slot()
    return await client.bookings.create(provider_id=provider_id, start_time=start, end_time=end)


async def test_a_booking_by_another_client_arrives_within_a_second(sdk_service: Service) -> None:
    async with AsyncBookingsClient(sdk_service.url) as provider, AsyncBookingsClient(sdk_service.url) as user:
        me = await signed_in(provider, "provider")
        await signed_in(user)
        async with provider.events() as stream:
            await subscribed(stream)
            booking = await book(user, me.id)
            event = await next_event(stream, within=1.0)

    assert event.event == "booking.created"
    assert event.data == booking
    assert event.data.provider_id == me.id
    assert event.occurred_at.utcoffset() is not None
    assert stream.last_id == event.id


async def test_the_stream_survives_a_server_restart_and_replays_what_it_missed(
    restartable_service: Service, tmp_path: Path
) -> None:
    svc = restartable_service
    async with AsyncBookingsClient(svc.url, **FAST) as provider, AsyncBookingsClient(svc.url, **FAST) as user:
        me = await signed_in(provider, "provider")
        user_account = await signed_in(user)
        async with provider.events() as stream:
            await subscribed(stream)
            first = await book(user, me.id)
            before = await next_event(stream, within=2)
            assert (before.event, before.data.id) == ("booking.created", first.id)

            # The server goes away; meanwhile changes happen through another server on the same database.
            async def changes(elsewhere: AsyncBookingsClient) -> tuple[Booking, datetime]:
                second = await book(elsewhere, me.id)
                later_start, later_end = slot()
                await elsewhere.bookings.reschedule(second.id, start_time=later_start, end_time=later_end)
                await elsewhere.bookings.cancel(first.id, reason="while the other server was down")
                return second, later_start

            second, later_start = await _while_down(svc, stream, tmp_path, user_account.email, changes)
            assert stream.last_id == before.id

            # A new server process on the same port and database: the stream resumes by itself.
            await _restart(svc, tmp_path)
            started = time.monotonic()  # from the moment the new server is ready
            missed = [await next_event(stream, within=10) for _ in range(3)]
            caught_up_after = time.monotonic() - started

            # And it continues live.
            third = await book(user, me.id)
            live = await next_event(stream, within=2)
            # Nothing more: no event twice.
            extra = await _maybe_next(stream, within=1.0)

    assert [(e.event, e.data.id) for e in missed] == [
        ("booking.created", second.id),
        ("booking.updated", second.id),
        ("booking.cancelled", first.id),
    ]
    assert missed[1].data.start_time == later_start
    assert missed[2].data.cancel_reason == "while the other server was down"
    assert (live.event, live.data.id) == ("booking.created", third.id)
    ids = [before.id, *(e.id for e in missed), live.id]
    assert ids == sorted(set(ids)), f"ids must increase with no repeat: {ids}"
    assert extra is None, f"an event came twice or unexpectedly: {extra}"
    assert stream.reconnects >= 1
    assert caught_up_after < 3, f"the stream took {caught_up_after:.1f}s to catch up after the server was back"


async def test_a_drop_before_the_first_event_loses_nothing(restartable_service: Service, tmp_path: Path) -> None:
    """No ``since`` and no event yet: the stream resumes from the server's ``stream.ready``, not from "now"."""
    svc = restartable_service
    async with AsyncBookingsClient(svc.url, **FAST) as provider, AsyncBookingsClient(svc.url, **FAST) as user:
        me = await signed_in(provider, "provider")
        user_account = await signed_in(user)
        async with provider.events() as stream:
            await subscribed(stream)
            assert stream.last_id is None  # nothing handed out yet

            async def change(elsewhere: AsyncBookingsClient) -> Booking:
                return await book(elsewhere, me.id)

            made = await _while_down(svc, stream, tmp_path, user_account.email, change)
            await _restart(svc, tmp_path)
            missed = await next_event(stream, within=10)
            extra = await _maybe_next(stream, within=1.0)
    assert (missed.event, missed.data.id) == ("booking.created", made.id)
    assert extra is None


async def test_a_refused_token_is_renewed_and_the_stream_connects(sdk_service: Service) -> None:
    """The server closes with 4401 (here: a token it cannot verify); the stream refreshes and reconnects."""
    async with AsyncBookingsClient(sdk_service.url) as provider, AsyncBookingsClient(sdk_service.url) as user:
        me = await signed_in(provider, "provider")
        await signed_in(user)
        real = provider.auth.tokens
        assert real is not None
        provider.auth.use_tokens(TokenPair(access_token="not-a-jwt", refresh_token=real.refresh_token, expires_in=900))
        async with provider.events() as stream:
            await subscribed(stream)
            booking = await book(user, me.id)
            event = await next_event(stream, within=2)
        renewed = provider.auth.tokens
    assert event.data.id == booking.id
    assert renewed is not None
    assert renewed.access_token not in {"not-a-jwt", real.access_token}
    assert renewed.refresh_token != real.refresh_token


async def test_since_replays_from_a_saved_id(sdk_service: Service) -> None:
    async with AsyncBookingsClient(sdk_service.url) as provider, AsyncBookingsClient(sdk_service.url) as user:
        me = await signed_in(provider, "provider")
        await signed_in(user)
        async with provider.events() as stream:
            await subscribed(stream)
            booking = await book(user, me.id)
            saved = (await next_event(stream, within=2)).id
        await user.bookings.update(booking.id, notes="while nobody listened")
        await user.bookings.cancel(booking.id)
        async with provider.events(since=saved) as resumed:
            replayed = [await next_event(resumed, within=5) for _ in range(2)]
    assert [e.event for e in replayed] == ["booking.updated", "booking.cancelled"]
    assert replayed[0].data.notes == "while nobody listened"
    assert replayed[0].id > saved


async def test_the_token_goes_in_the_subprotocol_and_never_into_the_log(
    sdk_service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    # At DEBUG the websockets library logs each handshake header, through the SDK's logger for the stream.
    caplog.set_level(logging.DEBUG, logger="bookings_client.events.websockets")
    async with AsyncBookingsClient(sdk_service.url) as client:
        await signed_in(client)
        token = client.auth.tokens.access_token if client.auth.tokens else ""
        async with client.events() as stream:
            await subscribed(stream)

    lines = [record.getMessage() for record in caplog.records]
    assert "> Sec-WebSocket-Protocol: bookings.v1, bearer.[redacted]" in lines, lines
    assert "< Sec-WebSocket-Protocol: bookings.v1" in lines, "the server selected bookings.v1, not the token"
    assert not [line for line in lines if line.lower().startswith("> authorization")], "no Authorization header"
    assert not [line for line in lines if line.startswith("> GET") and "token=" in line], "nor a token in the URL"
    assert token
    assert not [line for line in lines if token in line or token.split(".")[2] in line]


async def _while_down(
    svc: Service,
    stream: EventStream,
    tmp_path: Path,
    email: str,
    change: Callable[[AsyncBookingsClient], Awaitable[T]],
) -> T:
    """Stop the service's server, wait for the stream to notice, then ``change`` things through another server
    on the same database (signed in as ``email``) and stop that one too."""
    await asyncio.to_thread(svc.server.stop)
    await _disconnected(stream, within=10)
    other = await asyncio.to_thread(ServerProcess(env=svc.server.env, log_path=tmp_path / "server-other.log").start)
    try:
        async with AsyncBookingsClient(other.url) as elsewhere:
            await elsewhere.auth.login(email=email, password=PASSWORD)
            result = await change(elsewhere)
    finally:
        await asyncio.to_thread(other.stop)
    assert not stream.connected.is_set()
    return result


async def _restart(svc: Service, tmp_path: Path) -> None:
    """A new server process on the same port and database (the fixture stops it)."""
    old = svc.server
    svc.server = ServerProcess(env=old.env, log_path=tmp_path / "server-restarted.log", port=old.port)
    await asyncio.to_thread(svc.server.start)


async def _disconnected(stream: EventStream, within: float) -> None:
    for _ in range(int(within / 0.02)):
        if not stream.connected.is_set():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the stream did not notice that the server went away")


async def _maybe_next(stream: EventStream, within: float) -> Event | None:
    try:
        return await next_event(stream, within)
    except TimeoutError:
        return None
