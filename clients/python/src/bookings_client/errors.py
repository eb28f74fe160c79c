"""One exception family, rooted at :class:`BookingsError`.

``BookingsError``
    ``APIError``: the service answered with an error status; carries the problem document.
        ``AuthenticationError`` (401), ``PermissionDeniedError`` (403), ``NotFoundError`` (404),
        ``ConflictError`` (409), ``ValidationError`` (400, 422), ``PreconditionFailedError`` (412),
        ``PayloadTooLargeError`` (413), ``RateLimitedError`` (429), ``ServerError`` (5xx)
        ``IdempotencyKeyInUseError`` (a ``ConflictError``), ``IdempotencyKeyReusedError`` (a ``ValidationError``),
        ``SlotTakenError`` and ``DailyLimitReachedError`` (each a ``ConflictError``), ``OutsideAvailabilityError`` (a
        ``ValidationError``), ``ProviderNotFoundError`` and ``AvailabilityNotFoundError`` (each a ``NotFoundError``):
        told apart from their status's class by the problem document's ``type``
    ``APIConnectionError``: no answer (connection refused, reset, timed out), after the retries allowed.
    ``InvalidArgumentError`` (also a ``ValueError``): refused before anything was sent, e.g. a naive datetime.
"""

from __future__ import annotations

from http import HTTPStatus

import httpx
import pydantic

from bookings_client.models import FieldError, Problem


class BookingsError(Exception):
    """The root of every error this SDK raises on purpose."""


class APIError(BookingsError):
    """The service answered with an error status. The RFC 9457 problem document is in :attr:`problem`."""

    def __init__(self, problem: Problem, *, headers: httpx.Headers | None = None) -> None:
        self.problem = problem
        self.headers = headers if headers is not None else httpx.Headers()
        text = f"{problem.status} {problem.title}"
        super().__init__(f"{text}: {problem.detail}" if problem.detail else text)

    @property
    def status(self) -> int:
        return self.problem.status

    @property
    def title(self) -> str:
        return self.problem.title

    @property
    def detail(self) -> str | None:
        return self.problem.detail

    @property
    def type(self) -> str:
        return self.problem.type

    @property
    def errors(self) -> list[FieldError]:
        """Field errors of a validation failure (empty otherwise)."""
        return list(self.problem.errors or [])

    @property
    def request_id(self) -> str | None:
        return self.problem.request_id


class AuthenticationError(APIError):
    """401: missing, invalid or expired credentials (or a refresh token that was already used)."""


class PermissionDeniedError(APIError):
    """403: the caller may not do this."""


class NotFoundError(APIError):
    """404: not found, or not visible to the caller."""


class ConflictError(APIError):
    """409: conflicts with the current state, e.g. the slot is taken or the email is registered."""


class ValidationError(APIError):
    """422 (or 400 for a malformed body): the input failed validation; :attr:`errors` lists the fields."""


class PreconditionFailedError(APIError):
    """412: ``If-Match`` named a version that is not the current one; nothing was written.

    :attr:`etag` is the booking's current ``ETag`` (e.g. ``'"4"'``), when the service sent it.
    """

    @property
    def etag(self) -> str | None:
        etag: str | None = self.headers.get("etag")
        return etag


class IdempotencyKeyInUseError(ConflictError):
    """409 ``/problems/idempotency-key-in-use``: a request with this ``Idempotency-Key`` is still running.

    The SDK retries it by itself (after ``Retry-After``); this is raised once the retries allowed are spent.
    """

    @property
    def retry_after(self) -> float | None:
        return parse_retry_after(self.headers.get("retry-after"))


class IdempotencyKeyReusedError(ValidationError):
    """422 ``/problems/idempotency-key-reused``: the ``Idempotency-Key`` was used before for a different request
    (another body, path or ``If-Match``). A new change needs a new key."""


class SlotTakenError(ConflictError):
    """409 ``/problems/slot-taken``: the time overlaps another booking of the provider (or its buffers)."""


class DailyLimitReachedError(ConflictError):
    """409 ``/problems/daily-limit-reached``: the provider takes no more bookings that day (their own zone's day)."""


class OutsideAvailabilityError(ValidationError):
    """422 ``/problems/outside-availability``: the provider has a schedule and the time is not one of its slots.

    :attr:`reason` says why: ``outside_hours``, ``off_grid``, ``wrong_length``, ``too_soon`` or ``too_far``.
    ``availability.slots()`` lists the times that can be booked.
    """

    @property
    def reason(self) -> str | None:
        return self.errors[0].type if self.errors else None


class ProviderNotFoundError(NotFoundError):
    """404 ``/problems/provider-not-found``: no provider has this id."""


class AvailabilityNotFoundError(NotFoundError):
    """404 ``/problems/availability-not-found``: the provider has set no availability (any time can be booked), or
    the date has no override."""


class PayloadTooLargeError(APIError):
    """413: the body is larger than the service accepts."""


class RateLimitedError(APIError):
    """429: too many requests. :attr:`retry_after` is the server's hint in seconds, when it gave one."""

    @property
    def retry_after(self) -> float | None:
        return parse_retry_after(self.headers.get("retry-after"))


class ServerError(APIError):
    """5xx: the service failed or a dependency is unavailable."""


class APIConnectionError(BookingsError):
    """The service could not be reached or did not answer in time (after any retries allowed)."""


class InvalidArgumentError(BookingsError, ValueError):
    """An argument was refused before any request was sent (for example a naive ``datetime``)."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    412: PreconditionFailedError,
    413: PayloadTooLargeError,
    422: ValidationError,
    429: RateLimitedError,
}

# Problem types (with their status) that name a more precise class than the status alone does.
IDEMPOTENCY_KEY_IN_USE = "/problems/idempotency-key-in-use"
_BY_TYPE: dict[tuple[int, str], type[APIError]] = {
    (409, IDEMPOTENCY_KEY_IN_USE): IdempotencyKeyInUseError,
    (422, "/problems/idempotency-key-reused"): IdempotencyKeyReusedError,
    (409, "/problems/slot-taken"): SlotTakenError,
    (409, "/problems/daily-limit-reached"): DailyLimitReachedError,
    (422, "/problems/outside-availability"): OutsideAvailabilityError,
    (404, "/problems/provider-not-found"): ProviderNotFoundError,
    (404, "/problems/availability-not-found"): AvailabilityNotFoundError,
}


def parse_retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare enough to ignore


def problem_from(response: httpx.Response) -> Problem:
    """The response's problem document, or one made up from the status when the body is not one (a proxy's page)."""
    try:
        return Problem.model_validate_json(response.content)
    except pydantic.ValidationError:
        try:
            title = HTTPStatus(response.status_code).phrase
        except ValueError:
            title = "Error"
        detail = response.text[:500].strip() or None
        return Problem(title=title, status=response.status_code, detail=detail)


def error_from(response: httpx.Response) -> APIError:
    problem = problem_from(response)
    status = response.status_code
    cls = _BY_TYPE.get((status, problem.type)) or _BY_STATUS.get(status) or (ServerError if status >= 500 else APIError)
    return cls(problem, headers=response.headers)
