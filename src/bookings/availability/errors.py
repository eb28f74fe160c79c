"""The problems a booking meets against a provider's schedule."""

from __future__ import annotations

from bookings.availability.rules import Refusal
from bookings.errors import Conflict, FieldError, InvalidInput, NotFound

_WHY = {
    Refusal.OUTSIDE_HOURS: "The provider does not work then.",
    Refusal.OFF_GRID: "The time is not on the provider's slot grid.",
    Refusal.WRONG_LENGTH: "The booking is not of the provider's slot length.",
    Refusal.TOO_SOON: "The provider needs more notice than that.",
    Refusal.TOO_FAR: "The provider does not take bookings that far ahead.",
}


class OutsideAvailability(InvalidInput):
    title, slug = "Outside availability", "outside-availability"

    @classmethod
    def of(cls, refusal: Refusal) -> OutsideAvailability:
        why = _WHY[refusal]
        return cls(
            f"{why} Search the provider's slots (GET /v1/providers/{{providerId}}/slots) for times that can be booked.",
            errors=[FieldError(field="startTime", message=why, type=refusal.value)],
        )


class DailyLimitReached(Conflict):
    title, slug = "Daily limit reached", "daily-limit-reached"


def daily_limit_reached() -> DailyLimitReached:
    return DailyLimitReached("The provider takes no more bookings that day.")


class AvailabilityNotFound(NotFound):
    title, slug = "Availability not found", "availability-not-found"
