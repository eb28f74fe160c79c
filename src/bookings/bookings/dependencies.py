"""The booking service as a typed dependency."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from bookings.bookings.service import BookingService


async def booking_service(request: Request) -> BookingService:
    service: BookingService = request.app.state.bookings
    return service


Bookings = Annotated[BookingService, Depends(booking_service)]
