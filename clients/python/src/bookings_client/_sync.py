"""``BookingsClient``: the blocking client, the same methods as ``AsyncBookingsClient`` (``_async.py``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime
from types import TracebackType
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import httpx

from bookings_client._core import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    IDEMPOTENCY_KEY,
    USER_AGENT,
    RetryPolicy,
    TokenState,
    as_date,
    as_uuid,
    aware,
    body,
    checked_key,
    connection_error,
    if_match_header,
    paging,
    parse,
    raise_for_status,
    search_window,
    zone_name,
)
from bookings_client.errors import AuthenticationError
from bookings_client.models import (
    Booking,
    BookingCreateBody,
    BookingPatchBody,
    BookingWindow,
    CalendarFeed,
    CancelBody,
    HistoryEntry,
    Interval,
    LoginBody,
    Override,
    OverrideBody,
    Page,
    Problem,
    Provider,
    RefreshBody,
    RegisterBody,
    RegisterRole,
    Schedule,
    ScheduleBody,
    Slots,
    TokenPair,
    User,
    UserPatchBody,
)


class BookingsClient:
    """A blocking client for the Bookings API.

    ``with BookingsClient("http://127.0.0.1:8000") as client:``, then ``client.auth.login(...)``;
    the client keeps the tokens and refreshes the access token before it expires.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        backoff: float = 0.25,
        max_backoff: float = 8.0,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry = RetryPolicy(max_retries=max_retries, backoff=backoff, max_backoff=max_backoff)
        self._timeout = timeout
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            headers={"User-Agent": USER_AGENT, **(headers or {})},
            transport=transport,
            follow_redirects=False,
        )
        self._tokens = TokenState()
        self._refresh_lock = threading.Lock()
        self.auth = Auth(self)
        self.users = Users(self)
        self.providers = Providers(self)
        self.bookings = Bookings(self)
        self.availability = Availability(self)

    def __enter__(self) -> BookingsClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- transport -----------------------------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None,
        json: Any,
        headers: dict[str, str],
        keyed: bool = False,
    ) -> httpx.Response:
        """One request, repeated as ``self.retry`` allows; ``keyed`` when it carries an ``Idempotency-Key`` (every
        attempt then sends the same key, so the service applies the change at most once)."""
        attempt = 0
        while True:
            try:
                response = self._http.request(method, path, params=params, json=json, headers=headers)
            except httpx.TransportError as error:
                if not self.retry.retry_on_error(method, error, attempt, keyed=keyed):
                    raise connection_error(error, method, path) from error
                time.sleep(self.retry.delay(attempt))
                attempt += 1
                continue
            delay = self.retry.retry_on_status(method, response, attempt, keyed=keyed)
            if delay is None:
                return response
            time.sleep(delay)
            attempt += 1

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        authenticated: bool = True,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """``idempotency_key``: sent as ``Idempotency-Key`` on every attempt, which makes a POST or PATCH safe to
        repeat after a failure where it may have reached the service (see :class:`RetryPolicy`)."""
        extra = dict(headers or {})
        if idempotency_key is not None:
            extra[IDEMPOTENCY_KEY] = idempotency_key
        keyed = idempotency_key is not None
        retried_401 = False
        while True:
            sent = dict(extra)
            generation = self._tokens.generation
            if authenticated and (token := self._access_token()) is not None:
                sent["Authorization"] = f"Bearer {token}"
                generation = self._tokens.generation
            response = self._send(method, path, params=params, json=json, headers=sent, keyed=keyed)
            if response.status_code == 401 and authenticated and not retried_401 and self._tokens.tokens is not None:
                # The access token was refused before the service did anything (rotated key, clock skew): renew it
                # once and repeat the request, whatever its method.
                retried_401 = True
                self._refresh(generation)
                continue
            raise_for_status(response)
            return response

    def _access_token(self) -> str | None:
        if self._tokens.needs_refresh():
            self._refresh(self._tokens.generation)
        return self._tokens.access_token

    def _refresh(self, seen_generation: int) -> TokenPair:
        """Trade the refresh token for a new pair, once, however many threads ask at the same time.

        ``seen_generation`` is the token generation the caller used: if another thread renewed the tokens since,
        the new ones are returned without spending the refresh token again (each one works only once).
        """
        with self._refresh_lock:
            current = self._tokens.tokens
            if current is None:
                raise AuthenticationError(_not_signed_in())
            if self._tokens.generation != seen_generation:
                return current
            payload = body(RefreshBody(refresh_token=current.refresh_token))
            response = self._send("POST", "/v1/auth/refresh", params=None, json=payload, headers={})
            if response.status_code == 401:
                self._tokens.set(None)  # the session is over (expired, revoked, or the token was reused)
            raise_for_status(response)
            tokens = parse(TokenPair, response)
            self._tokens.set(tokens)
            return tokens


def _not_signed_in() -> Problem:
    return Problem(title="Not signed in", status=401, detail="Call client.auth.login() first.")


class Auth:
    def __init__(self, client: BookingsClient) -> None:
        self._client = client

    @property
    def tokens(self) -> TokenPair | None:
        """The current token pair (None when signed out)."""
        return self._client._tokens.tokens

    def use_tokens(self, tokens: TokenPair | None) -> None:
        """Resume a session saved earlier (treated as fresh: ``expires_in`` counts from now)."""
        self._client._tokens.set(tokens)

    def register(self, *, email: str, password: str, name: str, role: RegisterRole = "user") -> User:
        payload = body(RegisterBody(email=email, password=password, name=name, role=role))
        response = self._client._request("POST", "/v1/auth/register", json=payload, authenticated=False)
        return parse(User, response)

    def login(self, *, email: str, password: str) -> TokenPair:
        payload = body(LoginBody(email=email, password=password))
        response = self._client._request("POST", "/v1/auth/login", json=payload, authenticated=False)
        tokens = parse(TokenPair, response)
        self._client._tokens.set(tokens)
        return tokens

    def refresh(self) -> TokenPair:
        """Renew the tokens now (the client also does it by itself before the access token expires)."""
        return self._client._refresh(self._client._tokens.generation)

    def logout(self) -> None:
        """Revoke the refresh token's family on the server and forget the tokens."""
        tokens = self._client._tokens.tokens
        self._client._tokens.set(None)
        if tokens is not None:
            payload = body(RefreshBody(refresh_token=tokens.refresh_token))
            self._client._request("POST", "/v1/auth/logout", json=payload, authenticated=False)


class Users:
    def __init__(self, client: BookingsClient) -> None:
        self._client = client

    def me(self) -> User:
        return parse(User, self._client._request("GET", "/v1/users/me"))

    def update_me(self, **changes: Any) -> User:
        """Change ``name``, ``time_zone`` (None: the default zone) or ``email_notifications``; only those given."""
        payload = body(UserPatchBody(**changes))
        return parse(User, self._client._request("PATCH", "/v1/users/me", json=payload))

    def calendar_feed(self) -> CalendarFeed:
        """A new URL for the caller's calendar feed, to subscribe to in a calendar app (the previous one stops
        working)."""
        return parse(CalendarFeed, self._client._request("POST", "/v1/users/me/calendar-feed"))

    def revoke_calendar_feed(self) -> None:
        self._client._request("DELETE", "/v1/users/me/calendar-feed")


class Providers:
    def __init__(self, client: BookingsClient) -> None:
        self._client = client

    def list(self, *, page: int = 1, limit: int = 20, cursor: str | None = None) -> Page[Provider]:
        """One page, by number, or after ``cursor`` (a page's ``next_cursor``)."""
        response = self._client._request("GET", "/v1/providers", params=paging(page, limit, cursor))
        return parse(Page[Provider], response)

    def iter(self, *, limit: int = 100) -> Iterator[Provider]:
        """Every provider, walking by cursor."""
        cursor: str | None = None
        while True:
            result = self.list(limit=limit, cursor=cursor)
            yield from result.items
            if result.next_cursor is None:
                return
            cursor = result.next_cursor


class Bookings:
    def __init__(self, client: BookingsClient) -> None:
        self._client = client

    def create(
        self,
        *,
        provider_id: UUID | str,
        start_time: datetime,
        end_time: datetime,
        notes: str | None = None,
        idempotency_key: str | None = None,
    ) -> Booking:
        """Book a provider for a slot.

        Sent with an ``Idempotency-Key``: ``idempotency_key`` if given (1-255 visible ASCII characters; reuse it
        to repeat this same booking from elsewhere, e.g. after a crash), else a new random one for this call. The
        SDK's own retries (a dropped connection, a timeout, a 503) send the same key, so the booking is made once;
        a repeat answers with the first outcome.
        """
        key = checked_key(idempotency_key)
        fields: dict[str, Any] = {
            "provider_id": as_uuid("provider_id", provider_id),
            "start_time": aware("start_time", start_time),
            "end_time": aware("end_time", end_time),
        }
        if notes is not None:
            fields["notes"] = notes
        payload = body(BookingCreateBody(**fields))
        response = self._client._request("POST", "/v1/bookings", json=payload, idempotency_key=key)
        return parse(Booking, response)

    def get(self, booking_id: UUID | str) -> Booking:
        booking_id = as_uuid("booking_id", booking_id)
        return parse(Booking, self._client._request("GET", f"/v1/bookings/{booking_id}"))

    def history(
        self, booking_id: UUID | str, *, page: int = 1, limit: int = 20, cursor: str | None = None
    ) -> Page[HistoryEntry]:
        """Every version of the booking, oldest first, a page at a time (by number, or after ``cursor``)."""
        booking_id = as_uuid("booking_id", booking_id)
        path = f"/v1/bookings/{booking_id}/history"
        return parse(Page[HistoryEntry], self._client._request("GET", path, params=paging(page, limit, cursor)))

    def list(
        self, *, type: BookingWindow | None = None, page: int = 1, limit: int = 20, cursor: str | None = None
    ) -> Page[Booking]:
        """One page of the bookings the caller may see: ``upcoming`` (earliest first), ``past`` (latest first), or
        all of them (earliest first) when ``type`` is None; by number, or after ``cursor`` (a ``next_cursor``)."""
        params = paging(page, limit, cursor)
        if type is not None:
            params["type"] = type
        return parse(Page[Booking], self._client._request("GET", "/v1/bookings", params=params))

    def iter(self, *, type: BookingWindow | None = None, limit: int = 100) -> Iterator[Booking]:
        """Every booking the caller may see, walking by cursor: a booking added or cancelled meanwhile never
        makes another repeat or go missing."""
        cursor: str | None = None
        while True:
            result = self.list(type=type, limit=limit, cursor=cursor)
            yield from result.items
            if result.next_cursor is None:
                return
            cursor = result.next_cursor

    def reschedule(
        self,
        booking_id: UUID | str,
        *,
        start_time: datetime,
        end_time: datetime,
        idempotency_key: str | None = None,
        if_match: int | str | None = None,
    ) -> Booking:
        """Move the booking. ``idempotency_key`` as for :meth:`create`. ``if_match``: the ``version`` (or ``ETag``)
        the change is based on; if the booking changed since, nothing is written (``PreconditionFailedError``)."""
        booking_id = as_uuid("booking_id", booking_id)
        payload = BookingPatchBody(start_time=aware("start_time", start_time), end_time=aware("end_time", end_time))
        return self._patch(booking_id, payload, idempotency_key, if_match)

    def update(
        self,
        booking_id: UUID | str,
        *,
        notes: str | None,
        idempotency_key: str | None = None,
        if_match: int | str | None = None,
    ) -> Booking:
        """Replace the notes (None clears them). ``idempotency_key`` and ``if_match`` as for :meth:`reschedule`."""
        booking_id = as_uuid("booking_id", booking_id)
        return self._patch(booking_id, BookingPatchBody(notes=notes), idempotency_key, if_match)

    def _patch(
        self, booking_id: UUID, payload: BookingPatchBody, idempotency_key: str | None, if_match: int | str | None
    ) -> Booking:
        key, headers = checked_key(idempotency_key), if_match_header(if_match)
        path = f"/v1/bookings/{booking_id}"
        response = self._client._request("PATCH", path, json=body(payload), idempotency_key=key, headers=headers)
        return parse(Booking, response)

    def cancel(
        self,
        booking_id: UUID | str,
        *,
        reason: str | None = None,
        idempotency_key: str | None = None,
        if_match: int | str | None = None,
    ) -> Booking:
        """Cancel the booking (cancelling a cancelled one answers it unchanged). ``idempotency_key`` and
        ``if_match`` as for :meth:`reschedule`."""
        booking_id = as_uuid("booking_id", booking_id)
        key, headers = checked_key(idempotency_key), if_match_header(if_match)
        payload = CancelBody(reason=reason) if reason is not None else CancelBody()
        path = f"/v1/bookings/{booking_id}/cancel"
        response = self._client._request("POST", path, json=body(payload), idempotency_key=key, headers=headers)
        return parse(Booking, response)


class Availability:
    """A provider's weekly hours and slot rules, the dates with hours of their own, and the open slots.

    Reading is for anyone signed in; changing is for that provider or an admin (else ``PermissionDeniedError``).
    A provider without a schedule can be booked at any time: ``get`` and ``slots`` raise
    ``AvailabilityNotFoundError`` for one, ``ProviderNotFoundError`` for an id that is no provider.
    """

    def __init__(self, client: BookingsClient) -> None:
        self._client = client

    def get(self, provider_id: UUID | str) -> Schedule:
        provider_id = as_uuid("provider_id", provider_id)
        return parse(Schedule, self._client._request("GET", f"/v1/providers/{provider_id}/availability"))

    def set(
        self, provider_id: UUID | str, schedule: ScheduleBody | Schedule, *, if_match: int | str | None = None
    ) -> Schedule:
        """Replace the provider's schedule (the first one, or a whole new one). Bookings already made stay; the new
        rules apply to searches and bookings from now on. ``if_match``: the ``version`` (or ``ETag``) the change is
        based on; if the schedule changed since, nothing is written (``PreconditionFailedError``)."""
        provider_id = as_uuid("provider_id", provider_id)
        payload = body(schedule.to_body() if isinstance(schedule, Schedule) else schedule)
        path, headers = f"/v1/providers/{provider_id}/availability", if_match_header(if_match)
        return parse(Schedule, self._client._request("PUT", path, json=payload, headers=headers))

    def overrides(
        self,
        provider_id: UUID | str,
        *,
        from_: date | None = None,
        to: date | None = None,
        page: int = 1,
        limit: int = 20,
        cursor: str | None = None,
    ) -> Page[Override]:
        """The dates with hours of their own, earliest first, between ``from_`` and ``to`` (inclusive, either open);
        a page at a time (by number, or after ``cursor``)."""
        provider_id = as_uuid("provider_id", provider_id)
        params = paging(page, limit, cursor)
        if from_ is not None:
            params["from"] = as_date("from_", from_)
        if to is not None:
            params["to"] = as_date("to", to)
        path = f"/v1/providers/{provider_id}/availability/overrides"
        return parse(Page[Override], self._client._request("GET", path, params=params))

    def iter_overrides(
        self, provider_id: UUID | str, *, from_: date | None = None, to: date | None = None, limit: int = 100
    ) -> Iterator[Override]:
        """Every override between ``from_`` and ``to``, walking by cursor."""
        cursor: str | None = None
        while True:
            result = self.overrides(provider_id, from_=from_, to=to, limit=limit, cursor=cursor)
            yield from result.items
            if result.next_cursor is None:
                return
            cursor = result.next_cursor

    def set_override(
        self, provider_id: UUID | str, date: date, intervals: Sequence[Interval], *, note: str | None = None
    ) -> Override:
        """Give ``date`` (in the provider's zone, today or later) hours of its own instead of its weekday's;
        ``intervals=[]`` closes the day. Replaces an override the date already has."""
        provider_id = as_uuid("provider_id", provider_id)
        path = f"/v1/providers/{provider_id}/availability/overrides/{as_date('date', date)}"
        payload = body(OverrideBody(intervals=list(intervals), note=note))
        return parse(Override, self._client._request("PUT", path, json=payload))

    def delete_override(self, provider_id: UUID | str, date: date) -> None:
        """The date follows its weekday again (``AvailabilityNotFoundError`` if it had no override)."""
        provider_id = as_uuid("provider_id", provider_id)
        path = f"/v1/providers/{provider_id}/availability/overrides/{as_date('date', date)}"
        self._client._request("DELETE", path)

    def slots(
        self,
        provider_id: UUID | str,
        *,
        from_: date | datetime,
        to: date | datetime,
        time_zone: str | ZoneInfo | None = None,
    ) -> Slots:
        """The provider's open slots (UTC, ascending), which book as they are.

        ``from_`` and ``to`` are two dates, inclusive, read in ``time_zone`` (an IANA name or a ``ZoneInfo``;
        default: the provider's zone), or two timezone-aware datetimes for the window ``[from_, to)``; at most 31
        days. A taken slot, one too soon or too far ahead, and the days at their limit are left out.
        """
        provider_id = as_uuid("provider_id", provider_id)
        params = {**search_window(from_, to), **zone_name(time_zone)}
        path = f"/v1/providers/{provider_id}/slots"
        return parse(Slots, self._client._request("GET", path, params=params))
