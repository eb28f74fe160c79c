"""The SDK's availability methods against a real server: a schedule set and read back, slots searched in the
provider's zone and in another one, an offered slot booked, overrides, and the typed errors of each refusal."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from bookings_client import (
    AsyncBookingsClient,
    AvailabilityNotFoundError,
    BookingsClient,
    DailyLimitReachedError,
    Interval,
    InvalidArgumentError,
    OutsideAvailabilityError,
    PermissionDeniedError,
    PreconditionFailedError,
    ProviderNotFoundError,
    Schedule,
    ScheduleBody,
    ServerError,
    Slot,
    SlotTakenError,
    ValidationError,
    WeeklyHours,
)

from tests.conftest import Service
from tests.sdk.helpers import signed_in, signed_in_sync

BERLIN = ZoneInfo("Europe/Berlin")
MORNING = [Interval(start="09:00", end="12:00")]


def next_monday(weeks_ahead: int = 3) -> date:
    """A Monday a few weeks from now (in Berlin): ahead of any notice, inside any horizon the tests set."""
    today = datetime.now(BERLIN).date()
    return today + timedelta(days=(7 - today.weekday()) % 7 + 7 * weeks_ahead)


def berlin(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=BERLIN).astimezone(UTC)


def utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def starts(slots: list[Slot]) -> list[datetime]:
    return [s.start_time for s in slots]


def monday_mornings(**rules: int | None) -> ScheduleBody:
    """Mondays 09:00-12:00 in Berlin, one-hour slots, closed the rest of the week."""
    return ScheduleBody(
        time_zone="Europe/Berlin", weekly_hours=WeeklyHours(monday=MORNING), slot_length_minutes=60, **rules
    )


@pytest.fixture
def provider(sdk_service: Service) -> Iterator[BookingsClient]:
    with BookingsClient(sdk_service.url) as client:
        signed_in_sync(client, "provider")
        yield client


@pytest.fixture
def user(sdk_service: Service) -> Iterator[BookingsClient]:
    with BookingsClient(sdk_service.url) as client:
        signed_in_sync(client)
        yield client


def provider_id(client: BookingsClient) -> uuid.UUID:
    return client.users.me().id


def test_a_provider_sets_hours_and_a_user_books_an_offered_slot(provider: BookingsClient, user: BookingsClient) -> None:
    pid = provider_id(provider)
    schedule = provider.availability.set(pid, monday_mornings())
    assert isinstance(schedule, Schedule)
    assert (schedule.provider_id, schedule.time_zone, schedule.version) == (pid, "Europe/Berlin", 1)
    assert schedule.weekly_hours.monday == MORNING
    assert schedule.weekly_hours.day("tuesday") == []
    assert (schedule.slot_length_minutes, schedule.slot_interval_minutes) == (60, 60)  # the step defaults to it
    assert (schedule.buffer_after_minutes, schedule.max_horizon_days, schedule.max_bookings_per_day) == (0, None, None)
    assert user.availability.get(pid) == schedule

    monday = next_monday()
    found = user.availability.slots(pid, from_=monday, to=monday)
    assert (found.provider_id, found.time_zone, found.provider_time_zone) == (pid, "Europe/Berlin", "Europe/Berlin")
    assert (found.from_, found.to, found.slot_length_minutes) == (monday.isoformat(), monday.isoformat(), 60)
    assert starts(found.slots) == [berlin(monday, 9), berlin(monday, 10), berlin(monday, 11)]
    assert all(s.end_time - s.start_time == timedelta(hours=1) for s in found.slots)

    chosen = found.slots[1]
    booking = user.bookings.create(provider_id=pid, start_time=chosen.start_time, end_time=chosen.end_time)
    assert (booking.start_time, booking.end_time, booking.status) == (chosen.start_time, chosen.end_time, "confirmed")
    # Taken: no longer offered, to anyone.
    again = provider.availability.slots(pid, from_=monday, to=monday)
    assert starts(again.slots) == [berlin(monday, 9), berlin(monday, 11)]


def test_dates_are_read_in_the_zone_the_search_names(provider: BookingsClient, user: BookingsClient) -> None:
    """Monday 09:00-12:00 in Berlin is Sunday evening in Pago Pago (UTC-11): a search of that Sunday there finds it."""
    pid = provider_id(provider)
    provider.availability.set(pid, monday_mornings())
    monday = next_monday()
    sunday = monday - timedelta(days=1)
    expected = [berlin(monday, 9), berlin(monday, 10), berlin(monday, 11)]

    samoa = user.availability.slots(pid, from_=sunday, to=sunday, time_zone="Pacific/Pago_Pago")
    assert (samoa.time_zone, samoa.provider_time_zone) == ("Pacific/Pago_Pago", "Europe/Berlin")
    assert starts(samoa.slots) == expected
    assert user.availability.slots(pid, from_=sunday, to=sunday).slots == []  # Sunday in Berlin: closed
    by_zone = user.availability.slots(pid, from_=sunday, to=sunday, time_zone=ZoneInfo("Pacific/Pago_Pago"))
    assert by_zone.slots == samoa.slots

    # Two instants: the window [from, to), whatever zone they are written in.
    start = datetime.combine(monday, time(10), tzinfo=BERLIN)
    window = user.availability.slots(pid, from_=start, to=start.astimezone(ZoneInfo("Asia/Tokyo")) + timedelta(hours=5))
    assert starts(window.slots) == expected[1:]
    assert (window.from_, window.to) == (utc_text(start), utc_text(start + timedelta(hours=5)))


def test_each_refusal_raises_its_typed_error(
    sdk_service: Service, provider: BookingsClient, user: BookingsClient
) -> None:
    pid = provider_id(provider)
    provider.availability.set(pid, monday_mornings(max_bookings_per_day=2))
    monday = next_monday()

    with pytest.raises(OutsideAvailabilityError) as outside:
        user.bookings.create(provider_id=pid, start_time=berlin(monday, 3), end_time=berlin(monday, 4))
    assert (outside.value.status, outside.value.type, outside.value.reason) == (
        422,
        "/problems/outside-availability",
        "outside_hours",
    )
    assert isinstance(outside.value, ValidationError)
    with pytest.raises(OutsideAvailabilityError) as short:
        user.bookings.create(provider_id=pid, start_time=berlin(monday, 9), end_time=berlin(monday, 9, 30))
    assert short.value.reason == "wrong_length"
    with pytest.raises(OutsideAvailabilityError) as between:
        user.bookings.create(provider_id=pid, start_time=berlin(monday, 9, 30), end_time=berlin(monday, 10, 30))
    assert between.value.reason == "off_grid"

    user.bookings.create(provider_id=pid, start_time=berlin(monday, 9), end_time=berlin(monday, 10))
    with BookingsClient(sdk_service.url) as other:
        signed_in_sync(other)
        with pytest.raises(SlotTakenError) as taken:
            other.bookings.create(provider_id=pid, start_time=berlin(monday, 9), end_time=berlin(monday, 10))
        assert (taken.value.status, taken.value.type) == (409, "/problems/slot-taken")
        other.bookings.create(provider_id=pid, start_time=berlin(monday, 10), end_time=berlin(monday, 11))
        with pytest.raises(DailyLimitReachedError) as full:
            other.bookings.create(provider_id=pid, start_time=berlin(monday, 11), end_time=berlin(monday, 12))
        assert (full.value.status, full.value.type) == (409, "/problems/daily-limit-reached")
    assert user.availability.slots(pid, from_=monday, to=monday).slots == []  # the day is full

    with pytest.raises(PermissionDeniedError):
        user.availability.set(pid, monday_mornings())
    with pytest.raises(ProviderNotFoundError) as unknown:
        user.availability.get(uuid.uuid4())
    assert unknown.value.type == "/problems/provider-not-found"
    with pytest.raises(ValidationError) as no_zone:
        provider.availability.set(pid, ScheduleBody(time_zone="+02:00", weekly_hours=WeeklyHours()))
    assert [e.type for e in no_zone.value.errors] == ["time_zone"]
    with pytest.raises(ValidationError) as reversed_window:
        user.availability.slots(pid, from_=monday, to=monday - timedelta(days=1))
    assert [e.type for e in reversed_window.value.errors] == ["window_reversed"]


def test_a_provider_without_a_schedule_is_availability_not_found(sdk_service: Service, user: BookingsClient) -> None:
    with BookingsClient(sdk_service.url) as unscheduled:
        pid = signed_in_sync(unscheduled, "provider").id
    with pytest.raises(AvailabilityNotFoundError) as none_set:
        user.availability.get(pid)
    assert (none_set.value.status, none_set.value.type) == (404, "/problems/availability-not-found")
    with pytest.raises(AvailabilityNotFoundError):
        user.availability.slots(pid, from_=next_monday(), to=next_monday())
    # Booked at any time, as before.
    start = berlin(next_monday(), 3, 17)
    assert user.bookings.create(provider_id=pid, start_time=start, end_time=start + timedelta(minutes=7)).id


def test_a_change_based_on_an_old_version_writes_nothing(provider: BookingsClient) -> None:
    pid = provider_id(provider)
    first = provider.availability.set(pid, monday_mornings())
    longer = first.to_body().model_copy(update={"slot_length_minutes": 90, "slot_interval_minutes": None})
    second = provider.availability.set(pid, longer, if_match=first.version)
    assert (second.version, second.slot_length_minutes, second.slot_interval_minutes) == (2, 90, 90)
    assert second.weekly_hours == first.weekly_hours

    with pytest.raises(PreconditionFailedError) as stale:
        provider.availability.set(pid, first, if_match=first.version)  # a Schedule is taken as its own body
    assert stale.value.etag == '"2"'
    assert provider.availability.get(pid).slot_length_minutes == 90
    assert provider.availability.set(pid, first, if_match='"2"').version == 3


def test_overrides_close_a_day_or_give_it_hours_of_its_own(provider: BookingsClient, user: BookingsClient) -> None:
    pid = provider_id(provider)
    provider.availability.set(pid, monday_mornings())
    first, second, third = (next_monday(weeks) for weeks in (2, 3, 4))

    closed = provider.availability.set_override(pid, first, [], note="conference")
    assert (closed.date, closed.intervals, closed.note) == (first, [], "conference")
    half = provider.availability.set_override(pid, second, [Interval(start="14:00", end="16:00")])
    assert (half.intervals, half.note) == ([Interval(start="14:00", end="16:00")], None)
    # A Saturday, closed by its weekday, opened by an override.
    saturday = third - timedelta(days=2)
    provider.availability.set_override(pid, saturday, MORNING, note="open day")

    assert user.availability.slots(pid, from_=first, to=first).slots == []
    assert starts(user.availability.slots(pid, from_=second, to=second).slots) == [
        berlin(second, 14),
        berlin(second, 15),
    ]
    assert len(user.availability.slots(pid, from_=saturday, to=saturday).slots) == 3

    page = user.availability.overrides(pid)
    assert [o.date for o in page.items] == [first, second, saturday]
    assert (page.total, page.has_next) == (3, False)
    ranged = user.availability.overrides(pid, from_=second, to=saturday, limit=1)
    assert [o.date for o in ranged.items] == [second]
    assert ranged.next_cursor is not None
    after = user.availability.overrides(pid, from_=second, to=saturday, limit=1, cursor=ranged.next_cursor)
    assert [o.date for o in after.items] == [saturday]
    assert [o.date for o in user.availability.iter_overrides(pid, from_=second, limit=1)] == [second, saturday]

    provider.availability.delete_override(pid, first)
    assert len(user.availability.slots(pid, from_=first, to=first).slots) == 3  # its weekday's hours again
    with pytest.raises(AvailabilityNotFoundError):
        provider.availability.delete_override(pid, first)
    with pytest.raises(PermissionDeniedError):
        user.availability.set_override(pid, second, [])
    assert provider.availability.get(pid).version == 5  # every override change is a new version of the schedule


def test_arguments_are_checked_before_anything_is_sent(user: BookingsClient) -> None:
    pid = uuid.uuid4()
    with pytest.raises(InvalidArgumentError, match="from_ must be timezone-aware"):
        user.availability.slots(pid, from_=datetime(2030, 5, 1), to=datetime(2030, 5, 2, tzinfo=UTC))
    with pytest.raises(InvalidArgumentError, match="both dates or both datetimes"):
        user.availability.slots(pid, from_=date(2030, 5, 1), to=datetime(2030, 5, 2, tzinfo=UTC))
    with pytest.raises(InvalidArgumentError, match="date must be a date"):
        user.availability.set_override(pid, datetime(2030, 5, 1, tzinfo=UTC), [])
    with pytest.raises(InvalidArgumentError, match="provider_id must be a UUID"):
        user.availability.get("../../users/me")
    with pytest.raises(InvalidArgumentError, match="time_zone"):
        user.availability.slots(pid, from_=date(2030, 5, 1), to=date(2030, 5, 1), time_zone="")


async def test_the_async_client_does_the_same(sdk_service: Service) -> None:
    async with AsyncBookingsClient(sdk_service.url) as provider, AsyncBookingsClient(sdk_service.url) as user:
        pid = (await signed_in(provider, "provider")).id
        await signed_in(user)
        created = await provider.availability.set(pid, monday_mornings(buffer_after_minutes=60))
        assert (created.version, created.buffer_after_minutes) == (1, 60)
        assert (await user.availability.get(pid)).version == 1

        monday = next_monday()
        found = await user.availability.slots(pid, from_=monday, to=monday, time_zone="America/New_York")
        assert found.time_zone == "America/New_York"
        assert starts(found.slots) == [berlin(monday, 9), berlin(monday, 10), berlin(monday, 11)]
        chosen = found.slots[0]
        booked = await user.bookings.create(provider_id=pid, start_time=chosen.start_time, end_time=chosen.end_time)
        assert booked.start_time == chosen.start_time
        # Its hour after is a buffer: 10:00 is no longer offered either.
        left = await user.availability.slots(pid, from_=monday, to=monday)
        assert starts(left.slots) == [berlin(monday, 11)]

        override = await provider.availability.set_override(pid, monday, [], note="closed")
        assert override.intervals == []
        assert [o.date async for o in user.availability.iter_overrides(pid)] == [monday]
        assert (await user.availability.overrides(pid, from_=monday, to=monday)).total == 1
        assert (await user.availability.slots(pid, from_=monday, to=monday)).slots == []
        await provider.availability.delete_override(pid, monday)
        assert starts((await user.availability.slots(pid, from_=monday, to=monday)).slots) == [berlin(monday, 11)]
        with pytest.raises(OutsideAvailabilityError):
            await user.bookings.create(provider_id=pid, start_time=berlin(monday, 13), end_time=berlin(monday, 14))


def test_the_wire_form_of_a_schedule_and_a_search() -> None:
    """What the SDK sends: camelCase, only the fields given (the service's defaults for the rest), UTC instants."""
    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(503)

    with BookingsClient("http://bookings.test", transport=httpx.MockTransport(record), max_retries=0) as client:
        pid = uuid.uuid4()
        body = ScheduleBody(
            time_zone="Europe/Berlin", weekly_hours=WeeklyHours(monday=MORNING), buffer_after_minutes=15
        )
        with pytest.raises(ServerError):
            client.availability.set(pid, body, if_match=4)
        start = datetime(2030, 5, 1, 9, 30, tzinfo=BERLIN)
        with pytest.raises(ServerError):
            client.availability.slots(pid, from_=start, to=start + timedelta(days=1), time_zone="Asia/Kolkata")
        with pytest.raises(ServerError):
            client.availability.overrides(pid, from_=date(2030, 5, 1), limit=5)
    put, search, overrides = sent
    assert (put.method, put.url.path, put.headers["If-Match"]) == ("PUT", f"/v1/providers/{pid}/availability", '"4"')
    assert json.loads(put.content) == {
        "timeZone": "Europe/Berlin",
        "weeklyHours": {"monday": [{"start": "09:00", "end": "12:00"}]},
        "bufferAfterMinutes": 15,
    }
    assert search.url.path == f"/v1/providers/{pid}/slots"
    assert dict(search.url.params) == {
        "from": "2030-05-01T07:30:00Z",
        "to": "2030-05-02T07:30:00Z",
        "timeZone": "Asia/Kolkata",
    }
    assert dict(overrides.url.params) == {"from": "2030-05-01", "page": "1", "limit": "5"}
