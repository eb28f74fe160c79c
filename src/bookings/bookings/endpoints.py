"""``/v1/bookings``."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Request, Response, status

from bookings.auth.dependencies import Caller
from bookings.bookings import service
from bookings.bookings.dependencies import Bookings
from bookings.bookings.schemas import BookingCreate, BookingOut, BookingPatch, BookingWindow, CancelIn
from bookings.bookings.service import BookingNotFound
from bookings.bookings.store import slot_taken, unknown_provider
from bookings.db import WriteSession
from bookings.errors import (
    Conflict,
    InvalidInput,
    NotPermitted,
    problem_responses,
    rate_limited_responses,
)
from bookings.kit.pagination import Page, Paging
from bookings.kit.responses import JSONBytes
from bookings.ops.rate_limits import CREATE_BOOKING, Limits

router = APIRouter(prefix="/v1/bookings", tags=["bookings"])

BookingId = Annotated[uuid.UUID, Path(alias="bookingId", description="The booking's id.")]

# What changing an existing booking can answer besides success.
CHANGE_STATUSES = (400, 401, 403, 404, 409, 413, 422, 503)
SLOT_TAKEN = slot_taken()
NOT_VISIBLE = BookingNotFound(service.NOT_VISIBLE)
LOCATION = {"Location": {"description": "The new booking's URL.", "schema": {"type": "string"}}}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    operation_id="createBooking",
    summary="Book a provider for a time slot",
    description="Limited per user (`BOOKINGS_RATE_LIMIT_BOOKINGS`, default 60 a minute).",
    responses=rate_limited_responses(
        201,
        400,
        401,
        403,
        409,
        413,
        422,
        503,
        headers=LOCATION,
        examples=[
            NotPermitted("Only accounts with the `user` role can make bookings."),
            SLOT_TAKEN,
            InvalidInput.on("startTime", "The booking must start in the future.", "start_in_past"),
            unknown_provider(),
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
) -> BookingOut:
    await limits.hit(CREATE_BOOKING, str(caller.user_id), request, response)
    booking = await bookings.create(caller, body)
    response.headers["Location"] = f"/v1/bookings/{booking.id}"
    return booking


@router.get(
    "",
    response_model=Page[BookingOut],
    response_class=JSONBytes,
    operation_id="listBookings",
    summary="Bookings the caller may see, a page at a time",
    responses=problem_responses(401, 422, 503),
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
    return JSONBytes(await bookings.list(caller, window, paging))


@router.get(
    "/{bookingId}",
    response_model=BookingOut,
    response_class=JSONBytes,
    operation_id="getBooking",
    summary="One booking, if the caller may see it",
    responses=problem_responses(401, 404, 422, 503, examples=[NOT_VISIBLE]),
)
async def get(booking_id: BookingId, caller: Caller, bookings: Bookings) -> JSONBytes:
    return JSONBytes(await bookings.get(caller, booking_id))


@router.patch(
    "/{bookingId}",
    operation_id="updateBooking",
    summary="Reschedule a booking or edit its notes (its user or an admin)",
    responses=problem_responses(
        *CHANGE_STATUSES,
        examples=[
            NotPermitted("Only the booking's user or an admin can reschedule or edit it."),
            NOT_VISIBLE,
            SLOT_TAKEN,
            Conflict("A cancelled booking cannot be changed."),
        ],
    ),
)
async def update(
    booking_id: BookingId, body: BookingPatch, caller: Caller, session: WriteSession, bookings: Bookings
) -> BookingOut:
    return await bookings.update(session, caller, booking_id, body)


@router.post(
    "/{bookingId}/cancel",
    operation_id="cancelBooking",
    summary="Cancel a booking (its user, its provider or an admin)",
    responses=problem_responses(
        *CHANGE_STATUSES,
        examples=[
            NotPermitted("You may not cancel this booking."),
            NOT_VISIBLE,
            Conflict("The booking has already ended."),
        ],
    ),
)
async def cancel(
    booking_id: BookingId,
    caller: Caller,
    session: WriteSession,
    bookings: Bookings,
    body: Annotated[CancelIn | None, Body()] = None,
) -> BookingOut:
    return await bookings.cancel(session, caller, booking_id, body.reason if body else None)
