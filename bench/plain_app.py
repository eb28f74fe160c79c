"""The plain baseline: the three booking routes the bench measures, as a competent developer writes them in an
afternoon with FastAPI, raw asyncpg, Pydantic v2 and PyJWT. No caching and no tricks: it is what the service is
compared with, so it must be correct, not tuned.

It runs on the service's own database (tables ``users`` and ``bookings``, as migrated by ``bookings migrate``) and
verifies the access tokens the service issues (HS256, ``kid`` header, ``iss``, ``exp``, ``sub``, ``role``). Served by
``uv run uvicorn bench.plain_app:app --workers 2 --host 127.0.0.1 --port <port>`` (uvicorn's access log on, as by
default), configured from the environment:

- ``PLAIN_DATABASE_URL``: a ``postgresql://`` URL (asyncpg), one pool of at most 10 connections per worker;
- ``PLAIN_JWT_SECRET``: the secret of ``BOOKINGS_JWT_KEYS=<kid>:<secret>``; ``PLAIN_JWT_KID`` (default ``bench``)
  and ``PLAIN_JWT_ISSUER`` (default ``bookings``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import asyncpg
import jwt
from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

DATABASE_URL = os.environ.get("PLAIN_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/bookings")
JWT_SECRET = os.environ.get("PLAIN_JWT_SECRET", "")
JWT_KID = os.environ.get("PLAIN_JWT_KID", "bench")
JWT_ISSUER = os.environ.get("PLAIN_JWT_ISSUER", "bookings")
POOL_SIZE = 10
LONGEST_BOOKING = timedelta(hours=24)

# An overlapping confirmed booking of the provider: the textbook interval test.
OVERLAP_SQL = (
    "SELECT 1 FROM bookings WHERE provider_id = $1 AND status = 'confirmed' "
    "AND start_time < $3 AND end_time > $2 LIMIT 1"
)
COLUMNS = "id, user_id, provider_id, start_time, end_time, status, notes, cancel_reason, created_at, updated_at"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.pool = await asyncpg.create_pool(DATABASE_URL, min_size=2, max_size=POOL_SIZE)
    try:
        yield
    finally:
        await app.state.pool.close()


app = FastAPI(title="bookings (plain baseline)", lifespan=lifespan)
bearer = HTTPBearer()


class BookingIn(BaseModel):
    """The request body: camelCase only, unknown fields refused (a body cannot set ``userId`` or ``status``)."""

    model_config = ConfigDict(alias_generator=to_camel, extra="forbid")

    provider_id: uuid.UUID
    start_time: AwareDatetime
    end_time: AwareDatetime
    notes: str | None = Field(default=None, max_length=1000)


class BookingOut(BaseModel):
    """snake_case from the database rows, camelCase in the JSON."""

    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True)

    id: uuid.UUID
    user_id: uuid.UUID
    provider_id: uuid.UUID
    start_time: datetime
    end_time: datetime
    status: str
    notes: str | None
    cancel_reason: str | None
    created_at: datetime
    updated_at: datetime


class BookingPage(BaseModel):
    items: list[BookingOut]
    page: int
    limit: int
    total: int


class User(BaseModel):
    id: uuid.UUID
    email: str
    name: str
    role: Literal["user", "provider", "admin"]


async def connection(request: Request) -> AsyncIterator[asyncpg.Connection]:
    """One pooled connection for the whole request."""
    async with request.app.state.pool.acquire() as conn:
        yield conn


Conn = Annotated[asyncpg.Connection, Depends(connection)]


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"})


async def current_user(credentials: Annotated[HTTPAuthorizationCredentials, Depends(bearer)], conn: Conn) -> User:
    """Verify the access token, then load its user (a deleted account's token stops working at once)."""
    token = credentials.credentials
    try:
        if jwt.get_unverified_header(token).get("kid") != JWT_KID:
            raise _unauthorized("Unknown signing key")
        claims = jwt.decode(
            token, JWT_SECRET, algorithms=["HS256"], issuer=JWT_ISSUER, options={"require": ["exp", "sub", "iss"]}
        )
        user_id = uuid.UUID(claims["sub"])
    except (jwt.PyJWTError, ValueError) as exc:
        raise _unauthorized("Invalid or expired token") from exc
    row = await conn.fetchrow("SELECT id, email, name, role FROM users WHERE id = $1", user_id)
    if row is None:
        raise _unauthorized("Unknown user")
    return User.model_validate(dict(row))


CurrentUser = Annotated[User, Depends(current_user)]


def visible_to(user: User, args: list[Any]) -> str:
    """The condition on bookings that ``user`` may see (user: own, provider: assigned, admin: all); its parameter,
    if any, is appended to ``args``."""
    if user.role == "admin":
        return "TRUE"
    args.append(user.id)
    column = "provider_id" if user.role == "provider" else "user_id"
    return f"{column} = ${len(args)}"


def _check_times(body: BookingIn, now: datetime) -> None:
    if body.start_time <= now:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "The booking must start in the future")
    if body.end_time <= body.start_time:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "The booking must end after it starts")
    if body.end_time - body.start_time > LONGEST_BOOKING:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "A booking lasts at most 24 hours")


@app.get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/v1/bookings", status_code=status.HTTP_201_CREATED)
async def create_booking(body: BookingIn, user: CurrentUser, conn: Conn, response: Response) -> BookingOut:
    if user.role != "user":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Only users can make bookings")
    now = datetime.now(UTC)
    _check_times(body, now)
    role = await conn.fetchval("SELECT role FROM users WHERE id = $1", body.provider_id)
    if role != "provider":
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "No provider has this id")
    taken = await conn.fetchval(
        OVERLAP_SQL,
        body.provider_id,
        body.start_time,
        body.end_time,
    )
    if taken:
        raise HTTPException(status.HTTP_409_CONFLICT, "The provider already has a booking at this time")
    try:
        row = await conn.fetchrow(
            f"INSERT INTO bookings ({COLUMNS}, version, blocked_start, blocked_end) "
            "VALUES ($1, $2, $3, $4, $5, 'confirmed', $6, NULL, $7, $7, 1, $4, $5) "
            f"RETURNING {COLUMNS}",
            uuid.uuid4(),
            user.id,
            body.provider_id,
            body.start_time,
            body.end_time,
            body.notes,
            now,
        )
    except asyncpg.ExclusionViolationError as exc:  # a concurrent request took the slot after our check
        raise HTTPException(status.HTTP_409_CONFLICT, "The provider already has a booking at this time") from exc
    booking = BookingOut.model_validate(dict(row))
    response.headers["Location"] = f"/v1/bookings/{booking.id}"
    return booking


@app.get("/v1/bookings/{booking_id}")
async def get_booking(booking_id: uuid.UUID, user: CurrentUser, conn: Conn) -> BookingOut:
    args: list[Any] = [booking_id]
    row = await conn.fetchrow(f"SELECT {COLUMNS} FROM bookings WHERE id = $1 AND {visible_to(user, args)}", *args)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Booking not found")
    return BookingOut.model_validate(dict(row))


@app.get("/v1/bookings")
async def list_bookings(
    user: CurrentUser,
    conn: Conn,
    type_: Annotated[Literal["upcoming", "past"] | None, Query(alias="type")] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> BookingPage:
    args: list[Any] = []
    where = [visible_to(user, args)]
    order = "start_time ASC, id ASC"
    now = datetime.now(UTC)
    if type_ == "upcoming":  # no booking lasts longer than a day: start_time bounds the index scan
        args += [now - LONGEST_BOOKING, now]
        where += [f"start_time > ${len(args) - 1}", f"end_time > ${len(args)}"]
    elif type_ == "past":
        args += [now, now]
        where += [f"start_time < ${len(args) - 1}", f"end_time <= ${len(args)}"]
        order = "start_time DESC, id DESC"
    condition = " AND ".join(where)
    n = len(args)
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM bookings WHERE {condition} ORDER BY {order} LIMIT ${n + 1} OFFSET ${n + 2}",
        *args,
        limit,
        (page - 1) * limit,
    )
    total = await conn.fetchval(f"SELECT count(*) FROM bookings WHERE {condition}", *args)
    items = [BookingOut.model_validate(dict(row)) for row in rows]
    return BookingPage(items=items, page=page, limit=limit, total=total)
