"""Bad input never hurts (design §2, invariant 6): one table of bad requests across the routes.

Each is refused with its exact 4xx status as an RFC 9457 problem document (``application/problem+json``; a
``type``, a ``title``, a ``status`` equal to the HTTP status; for 422 an ``errors`` list naming the field), and
writes nothing: the number of bookings and the seeded booking are unchanged, and a refused registration's
email cannot log in.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import Service
from tests.support.api import PASSWORD, Account, account, book, future_slot, iso

PROBLEM = "application/problem+json"
MAX_BODY = 64 * 1024
DROP = object()  # a field to leave out of an otherwise valid body


@dataclass
class World:
    """What every case runs against: a user, a provider, one booking of theirs, and an email nobody has."""

    user: Account
    provider: Account
    booking: dict[str, Any]
    email: str = field(default_factory=lambda: f"bad-{secrets.token_hex(5)}@example.com")

    def create(self, **changes: Any) -> dict[str, Any]:
        """A valid ``POST /v1/bookings`` body, then ``changes`` (``DROP`` removes a field)."""
        start, end = future_slot()
        return _merged({"providerId": self.provider.id, "startTime": start, "endTime": end}, changes)

    def register(self, **changes: Any) -> dict[str, Any]:
        return _merged({"email": self.email, "password": PASSWORD, "name": "Bad Input", "role": "user"}, changes)

    def after_start(self, **delta: float) -> str:
        """A time relative to the seeded booking's start (so a PATCH can put its end before its start)."""
        start = datetime.fromisoformat(self.booking["startTime"])
        return iso(start + timedelta(**delta))


def _merged(body: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = {**body, **changes}
    return {key: value for key, value in merged.items() if value is not DROP}


def now(**delta: float) -> str:
    return iso(datetime.now(UTC) + timedelta(**delta))


def later(**delta: float) -> str:
    """10:00 a year from now (well clear of the seeded booking), shifted by ``delta``."""
    base = datetime.now(UTC).replace(hour=10, minute=0, second=0, microsecond=0) + timedelta(days=365)
    return iso(base + timedelta(**delta))


async def chunked(payload: bytes) -> AsyncIterator[bytes]:
    """A body httpx sends chunked: no Content-Length for the server to refuse up front."""
    for offset in range(0, len(payload), 8192):
        yield payload[offset : offset + 8192]


def oversized(world: World) -> bytes:
    """A well-formed registration, padded past the body cap."""
    return httpx.Request("POST", "/", json=world.register(name="x" * (MAX_BODY + 1))).content


@dataclass(frozen=True)
class Bad:
    """One bad request and what it must get back. Paths may name ``{booking}``."""

    id: str
    method: str
    path: str
    status: int
    json: Callable[[World], Any] | None = None
    content: Callable[[World], bytes | AsyncIterator[bytes]] | None = None
    caller: str = "user"  # "user", "nobody", or "garbage" (a bearer token that is not one)
    field: str | None = None  # for 422: the field `errors` must name
    code: str | None = None  # for 422: that error's `type`
    problem: str | None = None  # the problem `type`, where a specific one is promised


def create(id: str, json: Callable[[World], Any], field: str, code: str) -> Bad:
    return Bad(f"create/{id}", "POST", "/v1/bookings", 422, json=json, field=field, code=code)


def patch(id: str, json: Callable[[World], Any], field: str, code: str) -> Bad:
    return Bad(f"patch/{id}", "PATCH", "/v1/bookings/{booking}", 422, json=json, field=field, code=code)


def register(id: str, json: Callable[[World], Any], field: str, code: str) -> Bad:
    return Bad(f"register/{id}", "POST", "/v1/auth/register", 422, json=json, caller="nobody", field=field, code=code)


def me(id: str, json: Callable[[World], Any], field: str, code: str) -> Bad:
    return Bad(f"me/{id}", "PATCH", "/v1/users/me", 422, json=json, field=field, code=code)


def listing(id: str, query: str, field: str, code: str, path: str = "/v1/bookings") -> Bad:
    return Bad(id, "GET", f"{path}?{query}", 422, field=field, code=code)


UNKNOWN_ID = "2f6a3f0e-0b7c-4c8e-9d3a-5b1e7f9c0a42"
TOO_BIG = b'{"notes": "' + b"x" * MAX_BODY + b'"}'
NOT_AUTHENTICATED = "/problems/not-authenticated"
MALFORMED = "/problems/malformed-request"
TOO_LARGE = "/problems/payload-too-large"
NO_BOOKING = "/problems/booking-not-found"
ANOTHER_PASSWORD = "An0ther-Passw0rd!"

CASES = [
    # Creating a booking: when.
    create("start-in-the-past", lambda w: w.create(startTime=now(hours=-1), endTime=now(hours=1)),
           "startTime", "start_in_past"),
    create("start-is-now", lambda w: w.create(startTime=now(), endTime=now(hours=1)), "startTime", "start_in_past"),
    create("end-before-start", lambda w: w.create(startTime=later(), endTime=later(minutes=-30)),
           "endTime", "end_before_start"),
    create("end-equals-start", lambda w: w.create(startTime=later(), endTime=later()), "endTime", "end_before_start"),
    create("longer-than-24h", lambda w: w.create(startTime=later(), endTime=later(hours=24, minutes=1)),
           "endTime", "booking_too_long"),
    create("start-is-a-word", lambda w: w.create(startTime="tomorrow"), "startTime", "rfc3339_datetime"),
    # Times are RFC 3339 date-times with an offset and nothing else (pydantic alone takes all but the last two).
    create("unix-time-in-a-string", lambda w: w.create(startTime="1830000000"), "startTime", "rfc3339_datetime"),
    create("unix-time-as-a-number", lambda w: w.create(startTime=1830000000), "startTime", "rfc3339_datetime"),
    create("unix-time-with-fraction", lambda w: w.create(endTime="1830000000.5"), "endTime", "rfc3339_datetime"),
    create("date-without-time", lambda w: w.create(startTime="2030-05-01"), "startTime", "rfc3339_datetime"),
    create("minutes-without-seconds", lambda w: w.create(startTime="2030-05-01T09:00Z"),
           "startTime", "rfc3339_datetime"),
    create("offset-without-colon", lambda w: w.create(startTime="2030-05-01T09:00:00+0200"),
           "startTime", "rfc3339_datetime"),
    create("space-for-t", lambda w: w.create(startTime="2030-05-01 09:00:00Z"), "startTime", "rfc3339_datetime"),
    create("24-00-as-a-time", lambda w: w.create(endTime="2030-05-01T24:00:00Z"),
           "endTime", "datetime_from_date_parsing"),
    create("24-00-without-seconds", lambda w: w.create(endTime="2030-05-01T24:00Z"), "endTime", "rfc3339_datetime"),
    create("time-without-offset", lambda w: w.create(endTime="2030-05-01T09:30:00.250"), "endTime", "timezone_aware"),
    create("month-13", lambda w: w.create(startTime="2030-13-01T00:00:00Z"), "startTime", "datetime_from_date_parsing"),
    create("naive-time-without-offset", lambda w: w.create(startTime="2030-01-01T10:00:00"),
           "startTime", "timezone_aware"),
    create("year-1-with-offset", lambda w: w.create(startTime="0001-01-01T00:00:00+01:00"),
           "startTime", "time_out_of_range"),
    create("year-9999-with-offset", lambda w: w.create(endTime="9999-12-31T23:30:00-01:00"),
           "endTime", "time_out_of_range"),
    # Creating a booking: with whom.
    create("unknown-provider", lambda w: w.create(providerId=UNKNOWN_ID), "providerId", "unknown_provider"),
    create("provider-is-a-user", lambda w: w.create(providerId=w.user.id), "providerId", "unknown_provider"),
    create("provider-id-not-a-uuid", lambda w: w.create(providerId="not-a-uuid"), "providerId", "uuid_parsing"),
    create("provider-id-missing", lambda w: w.create(providerId=DROP), "providerId", "missing"),
    # Creating a booking: JSON types, lengths, characters, fields that are not the client's to set.
    create("provider-id-is-a-number", lambda w: w.create(providerId=123), "providerId", "uuid_type"),
    create("start-is-a-boolean", lambda w: w.create(startTime=True), "startTime", "rfc3339_datetime"),
    create("notes-is-an-object", lambda w: w.create(notes={}), "notes", "string_type"),
    create("notes-too-long", lambda w: w.create(notes="n" * 1001), "notes", "string_too_long"),
    create("notes-with-nul", lambda w: w.create(notes="a\x00b"), "notes", "string_contains_nul"),
    create("unknown-field-userId", lambda w: w.create(userId=w.provider.id), "userId", "extra_forbidden"),
    create("unknown-field-status", lambda w: w.create(status="cancelled"), "status", "extra_forbidden"),
    create("unknown-field-id", lambda w: w.create(id=UNKNOWN_ID), "id", "extra_forbidden"),
    # Creating a booking: the body itself.
    create("json-array-not-object", lambda w: [w.create()], "body", "model_attributes_type"),
    Bad("create/json-null", "POST", "/v1/bookings", 422, content=lambda w: b"null", field="body",
        code="model_attributes_type"),
    Bad("create/body-not-json", "POST", "/v1/bookings", 400, content=lambda w: b'{"providerId": ', problem=MALFORMED),
    Bad("create/empty-body", "POST", "/v1/bookings", 422, content=lambda w: b"", field="body", code="missing"),
    Bad("create/oversized-with-content-length", "POST", "/v1/bookings", 413, content=lambda w: TOO_BIG,
        problem=TOO_LARGE),
    Bad("create/oversized-chunked", "POST", "/v1/bookings", 413, content=lambda w: chunked(TOO_BIG),
        problem=TOO_LARGE),
    # Who is calling.
    Bad("create/no-authorization", "POST", "/v1/bookings", 401, json=World.create, caller="nobody",
        problem=NOT_AUTHENTICATED),
    Bad("create/garbage-token", "POST", "/v1/bookings", 401, json=World.create, caller="garbage",
        problem=NOT_AUTHENTICATED),
    Bad("list/no-authorization", "GET", "/v1/bookings", 401, caller="nobody", problem=NOT_AUTHENTICATED),
    Bad("me/garbage-token", "GET", "/v1/users/me", 401, caller="garbage", problem=NOT_AUTHENTICATED),
    # Listing.
    listing("list/limit-0", "limit=0", "query.limit", "greater_than_equal"),
    listing("list/limit-101", "limit=101", "query.limit", "less_than_equal"),
    listing("list/page-0", "page=0", "query.page", "greater_than_equal"),
    listing("list/page-abc", "page=abc", "query.page", "int_parsing"),
    listing("list/type-weird", "type=weird", "query.type", "enum"),
    listing("providers/limit-101", "limit=101", "query.limit", "less_than_equal", path="/v1/providers"),
    # One booking, by id.
    Bad("get/id-not-a-uuid", "GET", "/v1/bookings/not-a-uuid", 422, field="path.bookingId", code="uuid_parsing"),
    Bad("get/unknown-id", "GET", f"/v1/bookings/{UNKNOWN_ID}", 404, problem=NO_BOOKING),
    Bad("delete/not-a-method-here", "DELETE", "/v1/bookings/{booking}", 405),
    # Rescheduling and editing.
    patch("empty-object", lambda w: {}, "body", "nothing_to_change"),
    # Changing one's account: a real zone, a real flag, a name.
    me("empty-object", lambda w: {}, "body", "nothing_to_change"),
    me("offset-for-a-zone", lambda w: {"timeZone": "+02:00"}, "timeZone", "time_zone"),
    me("unknown-zone", lambda w: {"timeZone": "Mars/Olympus_Mons"}, "timeZone", "time_zone"),
    me("null-name", lambda w: {"name": None}, "name", "null_not_allowed"),
    me("empty-name", lambda w: {"name": ""}, "name", "string_too_short"),
    me("null-mail-flag", lambda w: {"emailNotifications": None}, "emailNotifications", "null_not_allowed"),
    me("mail-flag-as-a-word", lambda w: {"emailNotifications": "sometimes"}, "emailNotifications", "bool_parsing"),
    me("unknown-field", lambda w: {"role": "admin"}, "role", "extra_forbidden"),
    patch("null-start-time", lambda w: {"startTime": None}, "startTime", "null_not_allowed"),
    patch("unknown-field-userId", lambda w: {"userId": w.provider.id}, "userId", "extra_forbidden"),
    patch("unknown-field-status", lambda w: {"status": "cancelled"}, "status", "extra_forbidden"),
    patch("start-in-the-past", lambda w: {"startTime": now(hours=-2), "endTime": now(hours=-1)},
          "startTime", "start_in_past"),
    patch("end-before-existing-start", lambda w: {"endTime": w.after_start(minutes=-1)}, "endTime", "end_before_start"),
    patch("naive-time", lambda w: {"startTime": "2031-01-01T10:00:00"}, "startTime", "timezone_aware"),
    patch("unix-time-in-a-string", lambda w: {"startTime": "1930000000"}, "startTime", "rfc3339_datetime"),
    patch("date-without-time", lambda w: {"endTime": "2031-01-01"}, "endTime", "rfc3339_datetime"),
    patch("24-00-as-a-time", lambda w: {"endTime": "2031-01-01T24:00:00+01:00"},
          "endTime", "datetime_from_date_parsing"),
    patch("notes-too-long", lambda w: {"notes": "n" * 1001}, "notes", "string_too_long"),
    Bad("patch/unknown-id", "PATCH", f"/v1/bookings/{UNKNOWN_ID}", 404, json=lambda w: {"notes": "x"},
        problem=NO_BOOKING),
    Bad("patch/id-not-a-uuid", "PATCH", "/v1/bookings/123", 422, json=lambda w: {"notes": "x"},
        field="path.bookingId", code="uuid_parsing"),
    # Cancelling.
    Bad("cancel/reason-too-long", "POST", "/v1/bookings/{booking}/cancel", 422, json=lambda w: {"reason": "r" * 501},
        field="reason", code="string_too_long"),
    Bad("cancel/reason-is-a-number", "POST", "/v1/bookings/{booking}/cancel", 422, json=lambda w: {"reason": 5},
        field="reason", code="string_type"),
    Bad("cancel/body-not-json", "POST", "/v1/bookings/{booking}/cancel", 400, content=lambda w: b"{reason",
        problem=MALFORMED),
    Bad("cancel/unknown-id", "POST", f"/v1/bookings/{UNKNOWN_ID}/cancel", 404, problem=NO_BOOKING),
    # Registering: each password rule broken on its own, with its own code.
    register("password-too-short", lambda w: w.register(password="Sh0rt!"), "password", "password_too_short"),
    register("password-without-upper-case", lambda w: w.register(password="weak-passw0rd!"),
             "password", "password_missing_uppercase"),
    register("password-without-lower-case", lambda w: w.register(password="WEAK-PASSW0RD!"),
             "password", "password_missing_lowercase"),
    register("password-without-digit", lambda w: w.register(password="Weak-Password!"),
             "password", "password_missing_digit"),
    register("password-without-special", lambda w: w.register(password="WeakPassw0rd"),
             "password", "password_missing_special"),
    register("password-too-long", lambda w: w.register(password="Aa1!" * 33), "password", "password_too_long"),
    register("password-missing", lambda w: w.register(password=DROP), "password", "missing"),
    register("invalid-email", lambda w: w.register(email="not-an-email"), "email", "value_error"),
    register("empty-name", lambda w: w.register(name=""), "name", "string_too_short"),
    register("blank-name", lambda w: w.register(name="   "), "name", "string_too_short"),
    register("name-with-nul", lambda w: w.register(name="Ada\x00"), "name", "string_contains_nul"),
    register("role-admin", lambda w: w.register(role="admin"), "role", "literal_error"),
    Bad("register/duplicate-email", "POST", "/v1/auth/register", 409, caller="nobody", problem="/problems/email-taken",
        json=lambda w: w.register(email=w.user.email, password=ANOTHER_PASSWORD)),
    Bad("register/duplicate-email-in-capitals", "POST", "/v1/auth/register", 409, caller="nobody",
        problem="/problems/email-taken",
        json=lambda w: w.register(email=w.user.email.upper(), password=ANOTHER_PASSWORD)),
    Bad("register/oversized-with-content-length", "POST", "/v1/auth/register", 413, caller="nobody",
        content=oversized, problem=TOO_LARGE),
    Bad("register/oversized-chunked", "POST", "/v1/auth/register", 413, caller="nobody",
        content=lambda w: chunked(oversized(w)), problem=TOO_LARGE),
    # Logging in and tokens.
    Bad("login/wrong-password", "POST", "/v1/auth/login", 401, caller="nobody", problem=NOT_AUTHENTICATED,
        json=lambda w: {"email": w.user.email, "password": ANOTHER_PASSWORD}),
    Bad("login/unknown-email", "POST", "/v1/auth/login", 401, caller="nobody", problem=NOT_AUTHENTICATED,
        json=lambda w: {"email": w.email, "password": PASSWORD}),
    Bad("login/email-with-nul", "POST", "/v1/auth/login", 422, caller="nobody", field="email",
        code="string_contains_nul", json=lambda w: {"email": w.user.email + "\x00", "password": PASSWORD}),
    Bad("refresh/garbage-token", "POST", "/v1/auth/refresh", 401, caller="nobody", problem=NOT_AUTHENTICATED,
        json=lambda w: {"refreshToken": "garbage"}),
    Bad("refresh/empty-token", "POST", "/v1/auth/refresh", 422, caller="nobody", field="refreshToken",
        code="string_too_short", json=lambda w: {"refreshToken": ""}),
    Bad("logout/token-missing", "POST", "/v1/auth/logout", 422, caller="nobody", field="refreshToken", code="missing",
        json=lambda w: {}),
    Bad("unknown-route", "GET", "/v1/nowhere", 404, problem="/problems/not-found"),
]  # fmt: skip


@pytest.fixture(scope="module")
async def bad_api(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    """The root ``api`` for the whole module: the database is emptied after its last case, not after each, so that
    every case runs against one seeded world (``seeded``)."""
    async with httpx.AsyncClient(base_url=service.url, timeout=30) as client:
        yield client
    service.db.truncate()


@pytest.fixture(scope="module")
async def seeded(bad_api: httpx.AsyncClient) -> World:
    """One user, provider and booking per server, for every case: each case checks that it changed none of them."""
    user, provider = await account(bad_api), await account(bad_api, "provider")
    response = await book(bad_api, user, provider)
    assert response.status_code == 201, response.text
    return World(user=user, provider=provider, booking=response.json())


def _headers(bad: Bad, world: World) -> dict[str, str]:
    match bad.caller:
        case "user":
            return dict(world.user.headers)
        case "garbage":
            return {"Authorization": "Bearer not.a.token"}
    return {}


async def _send(api: httpx.AsyncClient, bad: Bad, world: World) -> tuple[httpx.Response, Any]:
    """Send the case; return the response and the JSON body sent (if any)."""
    path = bad.path.format(booking=world.booking["id"])
    headers = _headers(bad, world)
    if bad.content is not None:
        headers["content-type"] = "application/json"
        return await api.request(bad.method, path, content=bad.content(world), headers=headers), None
    if bad.json is not None:
        body = bad.json(world)
        return await api.request(bad.method, path, json=body, headers=headers), body
    return await api.request(bad.method, path, headers=headers), None


def _assert_problem(response: httpx.Response, bad: Bad) -> None:
    assert response.status_code == bad.status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["status"] == bad.status
    assert problem["type"], problem
    assert problem["title"], problem
    if bad.problem:
        assert problem["type"] == bad.problem, problem
    if bad.status == 422:
        assert problem.get("errors"), f"a 422 without a list of `errors`: {problem}"
        named = {(error["field"], error["type"]) for error in problem["errors"]}
        assert bad.field in {name for name, _ in named}, problem
        if bad.code:
            assert (bad.field, bad.code) in named, problem


async def _assert_cannot_log_in(api: httpx.AsyncClient, world: World, sent: Any) -> None:
    if isinstance(sent, dict) and isinstance(sent.get("email"), str) and isinstance(sent.get("password"), str):
        email, password = sent["email"], sent["password"]
    else:
        email, password = world.email, PASSWORD
    response = await api.post("/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 401, f"{email!r} can log in after a refused registration: {response.text}"


class TestBadInput:
    @pytest.mark.parametrize("bad", [pytest.param(case, id=case.id) for case in CASES])
    async def test_is_refused_with_a_problem_document_and_writes_nothing(
        self, bad_api: httpx.AsyncClient, service: Service, seeded: World, bad: Bad
    ) -> None:
        api = bad_api
        world = dataclasses.replace(seeded, email=f"bad-{secrets.token_hex(5)}@example.com")  # nobody's, this case's
        bookings_before = service.db.count_bookings()
        account_before = (await api.get("/v1/users/me", headers=world.user.headers)).json()

        response, sent = await _send(api, bad, world)

        _assert_problem(response, bad)
        assert service.db.count_bookings() == bookings_before
        seeded = await api.get(f"/v1/bookings/{world.booking['id']}", headers=world.user.headers)
        assert seeded.json() == world.booking, "the seeded booking changed"
        if bad.path == "/v1/auth/register":
            await _assert_cannot_log_in(api, world, sent)
        account_after = (await api.get("/v1/users/me", headers=world.user.headers)).json()
        assert account_after == account_before, "the caller's account changed"
