"""The read cache's rules, on its own: what it refuses to store, and when an entry stops being served."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from bookings.bookings.cache import ADMINS, ReadCache

NOW = datetime(2030, 1, 1, 12, tzinfo=UTC)
BOOKING, USER, PROVIDER = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def _cached(cache: ReadCache, ticket: int) -> bytes | None:
    cache.put_booking(ticket, BOOKING, USER, PROVIDER, b"{}", '"1"')
    entry = cache.booking(BOOKING)
    return entry.body if entry else None


class TestPut:
    def test_a_read_that_raced_a_change_is_not_stored(self) -> None:
        cache = ReadCache(100)
        ticket = cache.ticket()  # the read starts...
        cache.forget(BOOKING, USER, PROVIDER)  # ...a change commits while it runs...
        assert _cached(cache, ticket) is None  # ...so what it read may be older than the change
        assert _cached(cache, cache.ticket()) == b"{}"  # a read that started after the change is stored

    def test_a_change_to_another_booking_does_not_stop_a_read(self) -> None:
        cache = ReadCache(100)
        ticket = cache.ticket()
        cache.forget(uuid.uuid4(), uuid.uuid4(), uuid.uuid4())
        assert _cached(cache, ticket) == b"{}"

    def test_a_page_is_dropped_by_a_change_to_any_booking_of_its_principal(self) -> None:
        cache = ReadCache(100)
        for scope in (USER, PROVIDER, ADMINS):
            cache.put_page(cache.ticket(), scope, "q", b"[]", None)
        cache.forget(uuid.uuid4(), USER, PROVIDER)
        assert [cache.page(s, "q", NOW) for s in (USER, PROVIDER, ADMINS)] == [None, None, None]

    def test_a_read_older_than_every_remembered_change_is_not_stored(self) -> None:
        cache = ReadCache(100)
        ticket = cache.ticket()
        for _ in range(20_000):  # more changes during one read than the cache remembers keys for
            cache.forget(uuid.uuid4(), uuid.uuid4(), uuid.uuid4())
        assert _cached(cache, ticket) is None


class TestServe:
    def test_nothing_is_served_or_stored_while_the_bus_is_interrupted(self) -> None:
        cache = ReadCache(100)
        assert _cached(cache, cache.ticket()) == b"{}"
        cache.suspend()
        assert cache.booking(BOOKING) is None
        assert _cached(cache, cache.ticket()) is None
        ticket = cache.ticket()
        cache.resume()
        assert _cached(cache, ticket) is None  # read during the interruption: may have missed a change
        assert _cached(cache, cache.ticket()) == b"{}"

    def test_a_page_expires_when_a_booking_on_it_ends(self) -> None:
        cache = ReadCache(100)
        cache.put_page(cache.ticket(), USER, "upcoming", b"[]", NOW + timedelta(minutes=5))
        assert getattr(cache.page(USER, "upcoming", NOW), "body", None) == b"[]"
        assert cache.page(USER, "upcoming", NOW + timedelta(minutes=5)) is None

    def test_entries_expire_after_the_ttl(self) -> None:
        cache = ReadCache(100, ttl=-1.0)  # already expired when stored
        assert _cached(cache, cache.ticket()) is None

    def test_the_least_recently_used_booking_goes_first(self) -> None:
        cache = ReadCache(2)
        first, second, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        for booking_id in (first, second):
            cache.put_booking(cache.ticket(), booking_id, USER, PROVIDER, b"{}", '"1"')
        assert cache.booking(first) is not None  # used: second is now the oldest
        cache.put_booking(cache.ticket(), third, USER, PROVIDER, b"{}", '"1"')
        assert cache.booking(second) is None
        assert cache.booking(first) is not None

    def test_a_cache_of_size_zero_keeps_nothing(self) -> None:
        cache = ReadCache(0)
        assert _cached(cache, cache.ticket()) is None
