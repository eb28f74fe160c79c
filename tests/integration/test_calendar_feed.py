"""Calendar feeds over HTTP on both backends: what the policy shows, cheap polls, revocable secret URLs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import icalendar
import sqlalchemy as sa

from bookings.bookings.models import Booking
from tests.conftest import Service
from tests.support.api import Account, account, book, future_slot


def _calendar(response: httpx.Response) -> icalendar.Calendar:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/calendar")
    calendar = icalendar.Calendar.from_ical(response.content)
    assert isinstance(calendar, icalendar.Calendar)
    return calendar


def _uids(calendar: icalendar.Calendar) -> set[str]:
    return {str(event["UID"]) for event in calendar.walk("VEVENT")}


def _uid(booking: dict[str, str]) -> str:
    return f"booking-{booking['id']}@bookings"


async def _feed(api: httpx.AsyncClient, who: Account) -> str:
    issued = await api.post("/v1/users/me/calendar-feed", headers=who.headers)
    assert issued.status_code == 201, issued.text
    url: str = issued.json()["url"]
    assert url.startswith(str(api.base_url).rstrip("/") + "/v1/calendar-feeds/")
    assert url.endswith(".ics")
    return url


async def test_a_feed_shows_what_the_policy_lets_its_owner_see(api: httpx.AsyncClient) -> None:
    user, other, provider, elsewhere = (
        await account(api, "user"),
        await account(api, "user"),
        await account(api, "provider"),
        await account(api, "provider"),
    )
    mine = (await book(api, user, provider, future_slot(), notes="Bring the X-ray")).json()
    theirs = (await book(api, other, provider, future_slot())).json()
    away = (await book(api, user, elsewhere, future_slot())).json()
    gone = (await book(api, user, provider, future_slot())).json()
    cancelled = await api.post(f"/v1/bookings/{gone['id']}/cancel", json={}, headers=user.headers)
    assert cancelled.status_code == 200

    user_feed = _calendar(await api.get(await _feed(api, user)))
    assert _uids(user_feed) == {_uid(mine), _uid(away), _uid(gone)}
    provider_feed = _calendar(await api.get(await _feed(api, provider)))
    assert _uids(provider_feed) == {_uid(mine), _uid(theirs), _uid(gone)}

    events = {str(event["UID"]): event for event in user_feed.walk("VEVENT")}
    assert str(events[_uid(gone)]["STATUS"]) == "CANCELLED"
    assert int(events[_uid(gone)]["SEQUENCE"]) == 2
    first = events[_uid(mine)]
    assert str(first["STATUS"]) == "CONFIRMED"
    assert first.decoded("DTSTART").isoformat().replace("+00:00", "Z") == mine["startTime"]
    assert first.decoded("DTEND").isoformat().replace("+00:00", "Z") == mine["endTime"]
    assert str(first["DESCRIPTION"]) == "Bring the X-ray"
    assert "Booking with" in str(first["SUMMARY"])


def _booked_long_ago(service: Service, user: Account, provider: Account, ended_days_ago: float) -> str:
    """A booking written straight into the database (the API takes none in the past), as if made back then."""
    end = datetime.now(UTC) - timedelta(days=ended_days_ago)
    start = end - timedelta(hours=1)
    booking_id = uuid.uuid4()
    url = service.db.url.replace("postgresql://", "postgresql+psycopg://")
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.insert(Booking).values(
                    id=booking_id,
                    user_id=uuid.UUID(user.id),
                    provider_id=uuid.UUID(provider.id),
                    start_time=start,
                    end_time=end,
                    status="confirmed",
                    blocked_start=start,
                    blocked_end=end,
                    version=1,
                    created_at=start - timedelta(days=1),
                    updated_at=start - timedelta(days=1),
                )
            )
    finally:
        engine.dispose()
    return f"booking-{booking_id}@bookings"


async def test_a_feed_reaches_back_thirty_days(api: httpx.AsyncClient, service: Service) -> None:
    user, provider = await account(api, "user"), await account(api, "provider")
    recent = _booked_long_ago(service, user, provider, ended_days_ago=28)
    _booked_long_ago(service, user, provider, ended_days_ago=32)
    upcoming = (await book(api, user, provider, future_slot())).json()
    feed = _calendar(await api.get(await _feed(api, user)))
    assert _uids(feed) == {recent, _uid(upcoming)}


async def test_an_unchanged_feed_answers_304_and_a_change_changes_its_tag(api: httpx.AsyncClient) -> None:
    user, provider = await account(api, "user"), await account(api, "provider")
    booking = (await book(api, user, provider, future_slot())).json()
    url = await _feed(api, user)
    first = await api.get(url)
    tag = first.headers["etag"]
    assert "ratelimit" in first.headers
    unchanged = await api.get(url, headers={"If-None-Match": tag})
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["etag"] == tag

    moved_start, moved_end = future_slot()
    patch = {"startTime": moved_start, "endTime": moved_end}
    moved = await api.patch(f"/v1/bookings/{booking['id']}", json=patch, headers=user.headers)
    assert moved.status_code == 200
    after = await api.get(url, headers={"If-None-Match": tag})
    assert after.status_code == 200
    assert after.headers["etag"] != tag
    (event,) = _calendar(after).walk("VEVENT")
    assert int(event["SEQUENCE"]) == 2
    added = await book(api, user, provider, future_slot())
    assert added.status_code == 201
    again = await api.get(url, headers={"If-None-Match": after.headers["etag"]})
    assert again.status_code == 200
    assert len(_calendar(again).walk("VEVENT")) == 2


async def test_a_new_secret_revokes_the_old_url_and_delete_revokes_it(api: httpx.AsyncClient, service: Service) -> None:
    user = await account(api, "user")
    old = await _feed(api, user)
    assert (await api.get(old)).status_code == 200
    new = await _feed(api, user)
    assert new != old
    gone = await api.get(old)
    assert gone.status_code == 404
    assert gone.headers["content-type"] == "application/problem+json"
    assert gone.json()["type"].endswith("/calendar-feed-not-found")
    assert (await api.get(new)).status_code == 200
    revoked = await api.delete("/v1/users/me/calendar-feed", headers=user.headers)
    assert revoked.status_code == 204
    assert (await api.get(new)).status_code == 404
    assert (await api.get("/v1/calendar-feeds/not-a-secret-anyone-was-given.ics")).status_code == 404
    # The secret is the whole credential of the URL: the request log never holds it.
    secret = new.rsplit("/", 1)[1].removesuffix(".ics")
    assert secret not in service.server.log()
    assert "/v1/calendar-feeds/{secret}.ics" in service.server.log()


async def test_issuing_a_feed_needs_an_account(api: httpx.AsyncClient) -> None:
    assert (await api.post("/v1/users/me/calendar-feed")).status_code == 401
    assert (await api.delete("/v1/users/me/calendar-feed")).status_code == 401
