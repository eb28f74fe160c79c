"""A typed client for the Bookings service: ``BookingsClient`` (blocking) and ``AsyncBookingsClient`` (asyncio)."""

from bookings_client._async import AsyncBookingsClient
from bookings_client._events import EventStream
from bookings_client._sync import BookingsClient
from bookings_client.errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    BookingsError,
    ConflictError,
    IdempotencyKeyInUseError,
    IdempotencyKeyReusedError,
    InvalidArgumentError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    PreconditionFailedError,
    RateLimitedError,
    ServerError,
    ValidationError,
)
from bookings_client.models import (
    Booking,
    BookingStatus,
    BookingWindow,
    Event,
    EventType,
    FieldError,
    HistoryEntry,
    Page,
    Problem,
    Provider,
    Role,
    TokenPair,
    User,
)

__version__ = "0.1.0"

__all__ = [
    "APIConnectionError",
    "APIError",
    "AsyncBookingsClient",
    "AuthenticationError",
    "Booking",
    "BookingStatus",
    "BookingWindow",
    "BookingsClient",
    "BookingsError",
    "ConflictError",
    "Event",
    "EventStream",
    "EventType",
    "FieldError",
    "HistoryEntry",
    "IdempotencyKeyInUseError",
    "IdempotencyKeyReusedError",
    "InvalidArgumentError",
    "NotFoundError",
    "Page",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "PreconditionFailedError",
    "Problem",
    "Provider",
    "RateLimitedError",
    "Role",
    "ServerError",
    "TokenPair",
    "User",
    "ValidationError",
    "__version__",
]
