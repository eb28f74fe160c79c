"""``AsyncBookingsClient``: the asyncio client. ``_sync.py`` mirrors it method for method."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
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
from bookings_client._events import EventStream
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


class AsyncBookingsClient:
    """An asyncio client for the Bookings API.

    ``async with AsyncBookingsClient("http://127.0.0.1:8000") as client:``, then ``await client.auth.login(...)``;
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
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry = RetryPolicy(max_retries=max_retries, backoff=backoff, max_backoff=max_backoff)
        self._timeout = timeout
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=timeout,
            headers={"User-Agent": USER_AGENT, **(headers or {})},
            transport=transport,
            follow_redirects=False,
        )
        self._tokens = TokenState()
        self._refresh_lock = asyncio.Lock()
        self._streams: set[EventStream] = set()
        self.auth = AsyncAuth(self)
        self.users = AsyncUsers(self)
        self.providers = AsyncProviders(self)
        self.bookings = AsyncBookings(self)
        self.availability = AsyncAvailability(self)

    async def __aenter__(self) -> AsyncBookingsClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the event streams this client opened, then its connection pool."""
        for stream in list(self._streams):
            await stream.aclose()
        await self._http.aclose()

    def events(self, since: int | None = None) -> EventStream:
        """The live event stream (``/ws``) as an async iterator of :class:`~bookings_client.Event`.

        Use it as ``async with client.events() as stream: async for event in stream: ...``. It reconnects by itself
        after a drop (with backoff), resuming after the last event id it received, refreshes the access token when
        the server closes with 4401, and never yields the same id twice. Pass ``since`` to replay what happened
        after that id first.
        """
        return EventStream(self, since)

    # -- transport -----------------------------------------------------------------------------------------------

    async def _send(
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
                response = await self._http.request(method, path, params=params, json=json, headers=headers)
            except httpx.TransportError as error:
                if not self.retry.retry_on_error(method, error, attempt, keyed=keyed):
                    raise connection_error(error, method, path) from error
                await asyncio.sleep(self.retry.delay(attempt))
                attempt += 1
                continue
            delay = self.retry.retry_on_status(method, response, attempt, keyed=keyed)
            if delay is None:
                return response
            await asyncio.sleep(delay)
            attempt += 1

    async def _request(
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
            if authenticated and (token := await self._access_token()) is not None:
                sent["Authorization"] = f"Bearer {token}"
                generation = self._tokens.generation
            response = await self._send(method, path, params=params, json=json, headers=sent, keyed=keyed)
            if response.status_code == 401 and authenticated and not retried_401 and self._tokens.tokens is not None:
                # The access token was refused before the service did anything (rotated key, clock skew): renew it
                # once and repeat the request, whatever its method.
                retried_401 = True
                await self._refresh(generation)
                continue
            raise_for_status(response)
            return response

    async def _access_token(self) -> str | None:
        if self._tokens.needs_refresh():
            await self._refresh(self._tokens.generation)
        return self._tokens.access_token

    async def _refresh(self, seen_generation: int) -> TokenPair:
        """Trade the refresh token for a new pair, once, however many tasks ask at the same time.

        ``seen_generation`` is the token generation the caller used: if another task renewed the tokens since,
        the new ones are returned without spending the refresh token again (each one works only once).
        """
        async with self._refresh_lock:
            current = self._tokens.tokens
            if current is None:
                raise AuthenticationError(_not_signed_in())
            if self._tokens.generation != seen_generation:
                return current
            payload = body(RefreshBody(refresh_token=current.refresh_token))
            response = await self._send("POST", "/v1/auth/refresh", params=None, json=payload, headers={})
            if response.status_code == 401:
                self._tokens.set(None)  # the session is over (expired, revoked, or the token was reused)
            raise_for_status(response)
            tokens = parse(TokenPair, response)
            self._tokens.set(tokens)
            return tokens

    async def _stream_token(self, *, force: bool = False) -> str:
        """An access token for the event stream; a fresh one when ``force`` (the server closed with 4401)."""
        if force:
            await self._refresh(self._tokens.generation)
        token = await self._access_token()
        if token is None:
            raise AuthenticationError(_not_signed_in())
        return token


def _not_signed_in() -> Problem:
    return Problem(title="Not signed in", status=401, detail="Call client.auth.login() first.")


class AsyncAuth:
    def __init__(self, client: AsyncBookingsClient) -> None:
        self._client = client

    @property
    def tokens(self) -> TokenPair | None:
        """The current token pair (None when signed out)."""
        return self._client._tokens.tokens

    def use_tokens(self, tokens: TokenPair | None) -> None:
        """Resume a session saved earlier (treated as fresh: ``expires_in`` counts from now)."""
        self._client._tokens.set(tokens)

    async def register(self, *, email: str, password: str, name: str, role: RegisterRole = "user") -> User:
        payload = body(RegisterBody(email=email, password=password, name=name, role=role))
        response = await self._client._request("POST", "/v1/auth/register", json=payload, authenticated=False)
        return parse(User, response)

    async def login(self, *, email: str, password: str) -> TokenPair:
        payload = body(LoginBody(email=email, password=password))
        response = await self._client._request("POST", "/v1/auth/login", json=payload, authenticated=False)
        tokens = parse(TokenPair, response)
        self._client._tokens.set(tokens)
        return tokens

    async def refresh(self) -> TokenPair:
        """Renew the tokens now (the client also does it by itself before the access token expires)."""
        return await self._client._refresh(self._client._tokens.generation)

    async def logout(self) -> None:
        """Revoke the refresh token's family on the server and forget the tokens."""
        tokens = self._client._tokens.tokens
        self._client._tokens.set(None)
        if tokens is not None:
            payload = body(RefreshBody(refresh_token=tokens.refresh_token))
            await self._client._request("POST", "/v1/auth/logout", json=payload, authenticated=False)


class AsyncUsers:
    def __init__(self, client: AsyncBookingsClient) -> None:
        self._client = client

    async def me(self) -> User:
        return parse(User, await self._client._request("GET", "/v1/users/me"))

    async def update_me(self, **changes: Any) -> User:
        """Change ``name``, ``time_zone`` (None: the default zone) or ``email_notifications``; only those given."""
        payload = body(UserPatchBody(**changes))
        return parse(User, await self._client._request("PATCH", "/v1/users/me", json=payload))

    async def calendar_feed(self) -> CalendarFeed:
        """A new URL for the caller's calendar feed, to subscribe to in a calendar app (the previous one stops
        working)."""
        return parse(CalendarFeed, await self._client._request("POST", "/v1/users/me/calendar-feed"))

    async def revoke_calendar_feed(self) -> None:
        await self._client._request("DELETE", "/v1/users/me/calendar-feed")


class AsyncProviders:
    def __init__(self, client: AsyncBookingsClient) -> None:
        self._client = client

    async def list(self, *, page: int = 1, limit: int = 20, cursor: str | None = None) -> Page[Provider]:
        """One page, by number, or after ``cursor`` (a page's ``next_cursor``)."""
        response = await self._client._request("GET", "/v1/providers", params=paging(page, limit, cursor))
        return parse(Page[Provider], response)

    async def iter(self, *, limit: int = 100) -> AsyncIterator[Provider]:
        """Every provider, walking by cursor."""
        cursor: str | None = None
        while True:
            result = await self.list(limit=limit, cursor=cursor)
            for item in result.items:
                yield item
            if result.next_cursor is None:
                return
            cursor = result.next_cursor


class AsyncBookings:
    def __init__(self, client: AsyncBookingsClient) -> None:
        self._client = client

    async def create(
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
        response = await self._client._request("POST", "/v1/bookings", json=payload, idempotency_key=key)
        return parse(Booking, response)

    async def get(self, booking_id: UUID | str) -> Booking:
        booking_id = as_uuid("booking_id", booking_id)
        return parse(Booking, await self._client._request("GET", f"/v1/bookings/{booking_id}"))

    async def history(
        self, booking_id: UUID | str, *, page: int = 1, limit: int = 20, cursor: str | None = None
    ) -> Page[HistoryEntry]:
        """Every version of the booking, oldest first, a page at a time (by number, or after ``cursor``)."""
        booking_id = as_uuid("booking_id", booking_id)
        path = f"/v1/bookings/{booking_id}/history"
        return parse(Page[HistoryEntry], await self._client._request("GET", path, params=paging(page, limit, cursor)))

    async def list(
        self, *, type: BookingWindow | None = None, page: int = 1, limit: int = 20, cursor: str | None = None
    ) -> Page[Booking]:
        """One page of the bookings the caller may see: ``upcoming`` (earliest first), ``past`` (latest first), or
        all of them (earliest first) when ``type`` is None; by number, or after ``cursor`` (a ``next_cursor``)."""
        params = paging(page, limit, cursor)
        if type is not None:
            params["type"] = type
        return parse(Page[Booking], await self._client._request("GET", "/v1/bookings", params=params))

    async def iter(self, *, type: BookingWindow | None = None, limit: int = 100) -> AsyncIterator[Booking]:
        """Every booking the caller may see, walking by cursor: a booking added or cancelled meanwhile never
        makes another repeat or go missing."""
        cursor: str | None = None
        while True:
            result = await self.list(type=type, limit=limit, cursor=cursor)
            for item in result.items:
                yield item
            if result.next_cursor is None:
                return
            cursor = result.next_cursor

    async def reschedule(
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
        return await self._patch(booking_id, payload, idempotency_key, if_match)

    async def update(
        self,
        booking_id: UUID | str,
        *,
        notes: str | None,
        idempotency_key: str | None = None,
        if_match: int | str | None = None,
    ) -> Booking:
        """Replace the notes (None clears them). ``idempotency_key`` and ``if_match`` as for :meth:`reschedule`."""
        booking_id = as_uuid("booking_id", booking_id)
        return await self._patch(booking_id, BookingPatchBody(notes=notes), idempotency_key, if_match)

    async def _patch(
        self, booking_id: UUID, payload: BookingPatchBody, idempotency_key: str | None, if_match: int | str | None
    ) -> Booking:
        key, headers = checked_key(idempotency_key), if_match_header(if_match)
        path = f"/v1/bookings/{booking_id}"
        response = await self._client._request("PATCH", path, json=body(payload), idempotency_key=key, headers=headers)
        return parse(Booking, response)

    async def cancel(
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
        response = await self._client._request("POST", path, json=body(payload), idempotency_key=key, headers=headers)
        return parse(Booking, response)


class AsyncAvailability:
    """A provider's weekly hours and slot rules, the dates with hours of their own, and the open slots.

    Reading is for anyone signed in; changing is for that provider or an admin (else ``PermissionDeniedError``).
    A provider without a schedule can be booked at any time: ``get`` and ``slots`` raise
    ``AvailabilityNotFoundError`` for one, ``ProviderNotFoundError`` for an id that is no provider.
    """

    def __init__(self, client: AsyncBookingsClient) -> None:
        self._client = client

    async def get(self, provider_id: UUID | str) -> Schedule:
        provider_id = as_uuid("provider_id", provider_id)
        return parse(Schedule, await self._client._request("GET", f"/v1/providers/{provider_id}/availability"))

    async def set(
        self, provider_id: UUID | str, schedule: ScheduleBody | Schedule, *, if_match: int | str | None = None
    ) -> Schedule:
        """Replace the provider's schedule (the first one, or a whole new one). Bookings already made stay; the new
        rules apply to searches and bookings from now on. ``if_match``: the ``version`` (or ``ETag``) the change is
        based on; if the schedule changed since, nothing is written (``PreconditionFailedError``)."""
        provider_id = as_uuid("provider_id", provider_id)
        payload = body(schedule.to_body() if isinstance(schedule, Schedule) else schedule)
        path, headers = f"/v1/providers/{provider_id}/availability", if_match_header(if_match)
        return parse(Schedule, await self._client._request("PUT", path, json=payload, headers=headers))

    async def overrides(
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
        return parse(Page[Override], await self._client._request("GET", path, params=params))

    async def iter_overrides(
        self, provider_id: UUID | str, *, from_: date | None = None, to: date | None = None, limit: int = 100
    ) -> AsyncIterator[Override]:
        """Every override between ``from_`` and ``to``, walking by cursor."""
        cursor: str | None = None
        while True:
            result = await self.overrides(provider_id, from_=from_, to=to, limit=limit, cursor=cursor)
            for item in result.items:
                yield item
            if result.next_cursor is None:
                return
            cursor = result.next_cursor

    async def set_override(
        self, provider_id: UUID | str, date: date, intervals: Sequence[Interval], *, note: str | None = None
    ) -> Override:
        """Give ``date`` (in the provider's zone, today or later) hours of its own instead of its weekday's;
        ``intervals=[]`` closes the day. Replaces an override the date already has."""
        provider_id = as_uuid("provider_id", provider_id)
        path = f"/v1/providers/{provider_id}/availability/overrides/{as_date('date', date)}"
        payload = body(OverrideBody(intervals=list(intervals), note=note))
        return parse(Override, await self._client._request("PUT", path, json=payload))

    async def delete_override(self, provider_id: UUID | str, date: date) -> None:
        """The date follows its weekday again (``AvailabilityNotFoundError`` if it had no override)."""
        provider_id = as_uuid("provider_id", provider_id)
        path = f"/v1/providers/{provider_id}/availability/overrides/{as_date('date', date)}"
        await self._client._request("DELETE", path)

    async def slots(
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
        return parse(Slots, await self._client._request("GET", path, params=params))
