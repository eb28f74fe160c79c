"""``/v1/bookings``."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Header, Path, Query, Request, Response, status

from bookings.availability.errors import OutsideAvailability, daily_limit_reached
from bookings.availability.rules import Refusal
from bookings.bookings import history, service
from bookings.bookings.dependencies import Bookings
from bookings.bookings.schemas import BookingCreate, BookingOut, BookingPatch, BookingWindow, CancelIn, HistoryOut
from bookings.bookings.service import BookingNotFound, Change
from bookings.bookings.store import slot_taken, unknown_provider
from bookings.db import ReadSession, WriteSession
from bookings.errors import (
    Conflict,
    InvalidInput,
    NotPermitted,
    problem_responses,
    rate_limited_responses,
)
from bookings.idempotency import keys
from bookings.idempotency.keys import Outcome
from bookings.identity import Caller
from bookings.kit import conditional
from bookings.kit.pagination import CURSOR_EXAMPLE, LINK, Page, Paging, link_next
from bookings.kit.responses import JSONBytes
from bookings.ops.rate_limits import CREATE_BOOKING, Limits

router = APIRouter(prefix="/v1/bookings", tags=["bookings"])

BookingId = Annotated[uuid.UUID, Path(alias="bookingId", description="The booking's id.")]
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias=keys.HEADER,
        description="1-255 visible ASCII characters, new for each intended change: a retry with the same key and "
        "body replays the first success (with `Idempotent-Replayed: true`) instead of applying it again. "
        "Kept for `BOOKINGS_IDEMPOTENCY_RETENTION_HOURS` (24).",
    ),
]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description="The `ETag` the change is based on: if the booking has changed since, nothing is written and "
        "the answer is `412` with the current `ETag`. Required when `BOOKINGS_REQUIRE_IF_MATCH` is set.",
    ),
]
IfNoneMatch = Annotated[
    str | None,
    Header(alias="If-None-Match", description="An `ETag` the caller holds: `304` without a body if it is current."),
]

# What changing an existing booking can answer besides success.
CHANGE_STATUSES = (400, 401, 403, 404, 409, 412, 413, 422, 428, 503)
SLOT_TAKEN = slot_taken()
NOT_VISIBLE = BookingNotFound(service.NOT_VISIBLE)
ETAG = {"ETag": {"description": "The booking's version, as a strong entity tag.", "schema": {"type": "string"}}}
REPLAYED = {
    keys.REPLAYED: {
        "description": "`true` when this is the stored answer to an earlier request with the same `Idempotency-Key`.",
        "schema": {"type": "string", "enum": ["true"]},
    }
}
NO_REASON = CancelIn()  # a plain optional $ref in the document: `anyOf` with null trips up generated clients
LOCATION = {"Location": {"description": "The new booking's URL.", "schema": {"type": "string"}}}
KEY_ERRORS = [
    keys.InvalidIdempotencyKey(f"{keys.HEADER} must be 1 to 255 visible ASCII characters."),
    keys.IdempotencyKeyInUse(),
    keys.IdempotencyKeyReused(f"This {keys.HEADER} was used for a different request; use a new key for a new request."),
]


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def _sent(outcome: Outcome, request: Request) -> JSONBytes:
    """The outcome with the headers this request earned on its way (a rate limit's standing), not stored."""
    response = outcome.response()
    response.headers.update(getattr(request.state, "response_headers", {}))
    return response


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=BookingOut,
    response_class=JSONBytes,
    operation_id="createBooking",
    summary="Book a provider for a time slot",
    description="Limited per user (`BOOKINGS_RATE_LIMIT_BOOKINGS`, default 60 a minute). Safe to retry with an "
    "`Idempotency-Key`.",
    responses=rate_limited_responses(
        201,
        400,
        401,
        403,
        409,
        413,
        422,
        503,
        headers={**LOCATION, **ETAG, **REPLAYED},
        examples=[
            NotPermitted("Only accounts with the `user` role can make bookings."),
            SLOT_TAKEN,
            daily_limit_reached(),
            InvalidInput.on("startTime", "The booking must start in the future.", "start_in_past"),
            OutsideAvailability.of(Refusal.OUTSIDE_HOURS),
            unknown_provider(),
            *KEY_ERRORS,
        ],
    ),
)
async def create(
    body: BookingCreate,
    caller: Caller,
    bookings: Bookings,
    limits: Limits,
    request: Request,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONBytes:
    await limits.hit(CREATE_BOOKING, str(caller.user_id), request, response)
    key = await keys.key_of(request, caller.user_id, idempotency_key)
    return _sent(await bookings.create(caller, body, key, _request_id(request)), request)


@router.get(
    "",
    response_model=Page[BookingOut],
    response_class=JSONBytes,
    operation_id="listBookings",
    summary="Bookings the caller may see, a page at a time",
    responses={200: {"headers": LINK}, **problem_responses(400, 401, 422, 503, examples=[CURSOR_EXAMPLE])},
)
async def list_bookings(
    caller: Caller,
    bookings: Bookings,
    paging: Paging,
    window: Annotated[
        BookingWindow | None,
        Query(alias="type", description="`upcoming` (ends after now, earliest first) or `past` (latest first)."),
    ] = None,
) -> JSONBytes:
    body, link = await bookings.list(caller, window, paging)
    return JSONBytes(body, headers=None if link is None else {"Link": link})


@router.get(
    "/{bookingId}",
    response_model=BookingOut,
    response_class=JSONBytes,
    operation_id="getBooking",
    summary="One booking, if the caller may see it",
    responses={
        200: {"headers": ETAG},
        304: {"description": "The `ETag` in `If-None-Match` is current; no body.", "headers": ETAG},
        **problem_responses(401, 404, 422, 503, examples=[NOT_VISIBLE]),
    },
)
async def get(booking_id: BookingId, caller: Caller, bookings: Bookings, if_none_match: IfNoneMatch = None) -> Response:
    body, etag = await bookings.get(caller, booking_id)
    if if_none_match is not None and not conditional.if_none_match(if_none_match, etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag})
    return JSONBytes(body, headers={"ETag": etag})


@router.patch(
    "/{bookingId}",
    response_model=BookingOut,
    response_class=JSONBytes,
    operation_id="updateBooking",
    summary="Reschedule a booking or edit its notes (its user or an admin)",
    responses={
        200: {"headers": {**ETAG, **REPLAYED}},
        **problem_responses(
            *CHANGE_STATUSES,
            examples=[
                NotPermitted("Only the booking's user or an admin can reschedule or edit it."),
                NOT_VISIBLE,
                SLOT_TAKEN,
                daily_limit_reached(),
                OutsideAvailability.of(Refusal.OFF_GRID),
                Conflict("A cancelled booking cannot be changed."),
                *KEY_ERRORS,
            ],
        ),
    },
)
async def update(
    booking_id: BookingId,
    body: BookingPatch,
    caller: Caller,
    session: WriteSession,
    bookings: Bookings,
    request: Request,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONBytes:
    key = await keys.key_of(request, caller.user_id, idempotency_key)
    change = Change(caller, booking_id, if_match, key, _request_id(request))
    return _sent(await bookings.update(session, change, body), request)


@router.post(
    "/{bookingId}/cancel",
    response_model=BookingOut,
    response_class=JSONBytes,
    operation_id="cancelBooking",
    summary="Cancel a booking (its user, its provider or an admin)",
    description="Safe to repeat: cancelling a cancelled booking answers it unchanged.",
    responses={
        200: {"headers": {**ETAG, **REPLAYED}},
        **problem_responses(
            *CHANGE_STATUSES,
            examples=[
                NotPermitted("You may not cancel this booking."),
                NOT_VISIBLE,
                Conflict("The booking has already ended."),
                *KEY_ERRORS,
            ],
        ),
    },
)
async def cancel(
    booking_id: BookingId,
    caller: Caller,
    session: WriteSession,
    bookings: Bookings,
    request: Request,
    body: Annotated[CancelIn, Body(description="Optional: no body cancels without a reason.")] = NO_REASON,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONBytes:
    key = await keys.key_of(request, caller.user_id, idempotency_key)
    change = Change(caller, booking_id, if_match, key, _request_id(request))
    return _sent(await bookings.cancel(session, change, body.reason), request)


@router.get(
    "/{bookingId}/history",
    response_model=Page[HistoryOut],
    operation_id="getBookingHistory",
    summary="Every version of a booking: what changed, by whom, from which request (oldest first)",
    description="Whoever may see the booking may see its history; it is kept for the booking's life.",
    responses={
        200: {"headers": LINK},
        **problem_responses(400, 401, 404, 422, 503, examples=[NOT_VISIBLE, CURSOR_EXAMPLE]),
    },
)
async def get_history(
    booking_id: BookingId,
    caller: Caller,
    bookings: Bookings,
    session: ReadSession,
    paging: Paging,
    response: Response,
) -> Page[HistoryOut]:
    await bookings.get(caller, booking_id)  # 404 unless the caller may see the booking
    page = await history.page(session, booking_id, paging)
    link_next(response, paging, page)
    return page
