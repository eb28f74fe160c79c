"""Domain errors and the one place that turns any error into an RFC 9457 problem document.

The tree::

    BookingsError
    ├── MalformedRequest      400  the body is not JSON
    ├── NotAuthenticated      401  no token, or a bad, expired or revoked one; wrong email or password
    ├── NotPermitted          403  the caller may see the thing but not do this to it
    ├── NotFound              404  missing, or hidden from this caller (the two are indistinguishable)
    ├── Conflict              409
    │   ├── SlotTaken              the provider already has an active booking overlapping the slot
    │   └── EmailTaken
    ├── PreconditionFailed    412  ``If-Match`` names a version that is not the current one
    ├── PayloadTooLarge       413
    ├── InvalidInput          422  well-formed but not acceptable (past start, unknown provider, weak password)
    ├── PreconditionRequired  428  ``If-Match`` is required (``BOOKINGS_REQUIRE_IF_MATCH``) and missing
    ├── RateLimited           429  too many logins or bookings (``bookings.ops.rate_limits``); see `Retry-After`
    └── ServiceUnavailable    503  a dependency (the database) cannot be reached

Services raise these; routes never build responses for errors themselves.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any, ClassVar

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from bookings.kit.schemas import omitted_when_none

PROBLEM_MEDIA_TYPE = "application/problem+json"

log = structlog.get_logger("bookings.errors")


class FieldError(BaseModel):
    field: str = Field(description="Dotted path of the offending field, e.g. `startTime` or `query.limit`.")
    message: str
    type: str = Field(description="A stable machine-readable code, e.g. `missing` or `start_in_past`.")


class Problem(BaseModel):
    """An RFC 9457 problem document: `detail`, `instance` and `errors` may be absent (never `null`), the rest is
    always there."""

    # Sent with `exclude_none` (problem_response): a field left None is absent, so its schema is not nullable.

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "/problems/slot-taken",
                    "title": "Slot taken",
                    "status": 409,
                    "detail": "The provider already has a booking that overlaps this time.",
                    "instance": "/v1/bookings",
                    "requestId": "5f0c8f0e6a4b4d0f9a0f4a8c6b1e2d3f",
                }
            ]
        }
    )

    type: str = Field(description="A URI reference naming the kind of problem, e.g. `/problems/slot-taken`.")
    title: str = Field(description="A short summary of the kind of problem, the same for every problem of a `type`.")
    status: int = Field(description="The HTTP status code.")
    detail: str | None = Field(
        default=None, description="What went wrong this time.", json_schema_extra=omitted_when_none
    )
    instance: str | None = Field(
        default=None,
        description="The path of the request. (A problem made by a proxy in front of the service may lack it.)",
        json_schema_extra=omitted_when_none,
    )
    requestId: str = Field(description="The request's `X-Request-ID`, as in the service's log line.")
    errors: list[FieldError] | None = Field(
        default=None,
        description="The invalid fields, on `422` answers (and only there).",
        json_schema_extra=omitted_when_none,
    )


class BookingsError(Exception):
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal Server Error"
    slug: ClassVar[str] = "internal"

    def __init__(self, detail: str | None = None, *, errors: list[FieldError] | None = None) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.errors = errors
        self.headers: dict[str, str] = {}

    @property
    def type(self) -> str:
        return f"/problems/{self.slug}"


class MalformedRequest(BookingsError):
    status, title, slug = 400, "Malformed request", "malformed-request"


class NotAuthenticated(BookingsError):
    status, title, slug = 401, "Not authenticated", "not-authenticated"


class NotPermitted(BookingsError):
    status, title, slug = 403, "Not permitted", "not-permitted"


class NotFound(BookingsError):
    status, title, slug = 404, "Not found", "not-found"


class Conflict(BookingsError):
    status, title, slug = 409, "Conflict", "conflict"


class SlotTaken(Conflict):
    title, slug = "Slot taken", "slot-taken"


class EmailTaken(Conflict):
    title, slug = "Email taken", "email-taken"


class PreconditionFailed(BookingsError):
    status, title, slug = 412, "Precondition failed", "precondition-failed"

    def __init__(self, detail: str, *, etag: str) -> None:
        super().__init__(detail)
        self.headers["ETag"] = etag  # the current version, so the client can re-read or retry knowingly


class PayloadTooLarge(BookingsError):
    status, title, slug = 413, "Payload too large", "payload-too-large"


class InvalidInput(BookingsError):
    status, title, slug = 422, "Invalid input", "invalid-input"

    @classmethod
    def on(cls, field: str, message: str, code: str) -> InvalidInput:
        """An error about one field, listed in ``errors`` like a schema validation error."""
        return cls(message, errors=[FieldError(field=field, message=message, type=code)])


class RateLimited(BookingsError):
    status, title, slug = 429, "Too many requests", "rate-limited"

    def __init__(self, detail: str, *, retry_after: int, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
        self.headers.update({**(headers or {}), "Retry-After": str(retry_after)})


class PreconditionRequired(BookingsError):
    status, title, slug = 428, "Precondition required", "precondition-required"


class ServiceUnavailable(BookingsError):
    status, title, slug = 503, "Service unavailable", "service-unavailable"


def problem_response(
    request: Request,
    *,
    status: int,
    title: str,
    type_: str = "about:blank",
    detail: str | None = None,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    problem = Problem(
        type=type_,
        title=title,
        status=status,
        detail=detail,
        instance=request.url.path,
        # Set by the outermost middleware on every HTTP request; a fresh one only for a request made without it.
        requestId=getattr(request.state, "request_id", None) or uuid.uuid4().hex,
        errors=errors,
    )
    all_headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    # Headers the request earned before it failed (a rate limit's standing), then the error's own.
    all_headers.update(getattr(request.state, "response_headers", {}))
    all_headers.update(headers or {})
    return JSONResponse(
        problem.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=all_headers,
    )


def error_response(request: Request, error: BookingsError) -> JSONResponse:
    return problem_response(
        request,
        status=error.status,
        title=error.title,
        type_=error.type,
        detail=error.detail,
        errors=error.errors,
        headers=error.headers,
    )


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or "body"


def _validation_problem(exc: RequestValidationError) -> BookingsError:
    raw = exc.errors()
    if any(e.get("type") == "json_invalid" for e in raw):
        return MalformedRequest("The request body is not valid JSON.")
    errors = [FieldError(field=_field_path(tuple(e["loc"])), message=e["msg"], type=e["type"]) for e in raw]
    return InvalidInput("The request has invalid fields; see `errors`.", errors=errors)


# Framework errors that mean what one of ours means are answered as ours (same ``type`` and ``title``).
_FRAMEWORK_EQUIVALENTS: dict[int, type[BookingsError]] = {
    error.status: error for error in (MalformedRequest, NotFound, PayloadTooLarge)
}


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> str:
    """``Allow`` for a ``405``: every method of the resource (RFC 9110 §15.5.6), whichever route serves each.

    Starlette names only the methods of the first route that matched the path, so ``PUT /v1/bookings`` would say
    ``POST`` where ``GET, POST`` is true. Each method is asked of the router as if the request had used it.
    """
    routes = request.app.router.routes
    return ", ".join(
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    )


def install_error_handlers(app: FastAPI) -> None:
    async def on_domain_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, BookingsError)
        return error_response(request, exc)

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return error_response(request, _validation_problem(exc))

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        """Framework-level errors: unknown route, wrong method, a body that could not be read or is too big."""
        assert isinstance(exc, StarletteHTTPException)
        detail = str(exc.detail) if exc.detail and exc.detail != HTTPStatus(exc.status_code).phrase else None
        if (same := _FRAMEWORK_EQUIVALENTS.get(exc.status_code)) is not None:
            # One problem type per meaning: a streamed body over the cap (the middleware's HTTPException) is the
            # same 413 as a Content-Length over it, an unreadable body (FastAPI's "There was an error parsing the
            # body") the same 400 as invalid JSON, and an unknown route the same 404 as an unknown booking.
            return error_response(request, same(detail))
        headers = dict(exc.headers or {})
        if exc.status_code == HTTPStatus.METHOD_NOT_ALLOWED and (allowed := allowed_methods(request)):
            headers["Allow"] = allowed
        return problem_response(
            request,
            status=exc.status_code,
            title=HTTPStatus(exc.status_code).phrase,
            detail=detail,
            headers=headers,
        )

    async def on_database_down(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database_unavailable", error=type(exc).__name__, reason=str(exc).splitlines()[0][:300])
        return error_response(request, ServiceUnavailable("The database cannot be reached; retry later."))

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", error=type(exc).__name__)
        return error_response(request, BookingsError("An unexpected error occurred; it has been logged."))

    app.add_exception_handler(BookingsError, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(OperationalError, on_database_down)
    app.add_exception_handler(PoolTimeoutError, on_database_down)
    app.add_exception_handler(DBAPIError, on_unexpected)
    app.add_exception_handler(Exception, on_unexpected)


# OpenAPI ``responses=`` entries, so every route lists the problems it can return.
_DESCRIPTIONS = {
    400: "The request is malformed: a body that is not JSON, an invalid header or cursor.",
    401: "Missing, invalid or expired credentials.",
    403: "The caller may not do this.",
    404: "Not found, or not visible to the caller.",
    409: "Conflicts with the current state.",
    412: "`If-Match` does not name the current version; `ETag` carries it, and nothing was written.",
    413: "The body is larger than the service accepts.",
    422: "The input failed validation; `errors` lists the fields.",
    428: "This deployment requires `If-Match` on changes (`BOOKINGS_REQUIRE_IF_MATCH`).",
    429: "Too many requests; retry after `Retry-After` seconds.",
    503: "A dependency is unavailable.",
}

# The fields of draft-ietf-httpapi-ratelimit-headers, sent by rate-limited operations on every response.
RATE_LIMIT_HEADERS: dict[str, Any] = {
    "RateLimit-Policy": {
        "description": 'The limit: `"<name>";q=<requests>;w=<window seconds>`, one item per window.',
        "schema": {"type": "string"},
        "example": '"create-booking";q=60;w=60',
    },
    "RateLimit": {
        "description": 'Where the caller stands: `"<name>";r=<requests left>;t=<seconds until the window resets>`.',
        "schema": {"type": "string"},
        "example": '"create-booking";r=59;t=60',
    },
}
_HEADERS = {
    401: {"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}},
    412: {"ETag": {"description": "The current version's entity tag.", "schema": {"type": "string"}}},
    429: {
        "Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}},
        **RATE_LIMIT_HEADERS,
    },
}


# One example per status, shown in the OpenAPI document; a route may give its own (``examples=``).
_EXAMPLES: dict[int, BookingsError] = {
    error.status: error
    for error in (
        MalformedRequest("The request body is not valid JSON."),
        NotAuthenticated("An `Authorization: Bearer <accessToken>` header is required."),
        NotPermitted("Only admins may do this."),
        NotFound("No such resource, or it is not visible to the caller."),
        Conflict("The change conflicts with the current state."),
        PreconditionFailed("The booking is at version 3, not the one `If-Match` names.", etag='"3"'),
        PayloadTooLarge("The body is larger than 65536 bytes."),
        InvalidInput(
            "The request has invalid fields; see `errors`.",
            errors=[
                FieldError(field="endTime", message="The booking must end after it starts.", type="end_before_start")
            ],
        ),
        PreconditionRequired("Send `If-Match` with the `ETag` you last read."),
        RateLimited("Too many requests; retry in 37 s.", retry_after=37),
        ServiceUnavailable("The database cannot be reached; retry later."),
    )
}
_EXAMPLE_REQUEST_ID = "5f0c8f0e6a4b4d0f9a0f4a8c6b1e2d3f"


def problem_example(error: BookingsError) -> dict[str, Any]:
    """The problem document ``error`` is answered with (``instance`` left out: it is the request's path)."""
    problem = Problem(
        type=error.type,
        title=error.title,
        status=error.status,
        detail=error.detail,
        requestId=_EXAMPLE_REQUEST_ID,
        errors=error.errors,
    )
    return problem.model_dump(exclude_none=True)


def problem_responses(*statuses: int, examples: Iterable[BookingsError] = ()) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route: each status with its problem-document schema, its headers and examples.

    A status's examples are the route's own errors of that status (``examples``), else the status's usual one.
    """
    own: dict[int, list[BookingsError]] = {}
    for error in examples:
        own.setdefault(error.status, []).append(error)
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        errors = own.get(status) or [_EXAMPLES[status]]
        media: dict[str, Any] = {"schema": {"$ref": "#/components/schemas/Problem"}}
        if len(errors) == 1:
            media["example"] = problem_example(errors[0])
        else:
            media["examples"] = {
                f"{error.slug}-{n}": {"summary": error.detail or error.title, "value": problem_example(error)}
                for n, error in enumerate(errors, start=1)
            }
        response: dict[str, Any] = {"description": _DESCRIPTIONS[status], "content": {PROBLEM_MEDIA_TYPE: media}}
        if status in _HEADERS:
            response["headers"] = _HEADERS[status]
        responses[status] = response
    unused = set(own) - set(statuses)
    assert not unused, f"examples given for statuses the route does not list: {sorted(unused)}"
    return responses


def rate_limited_responses(
    success: int, *statuses: int, examples: Iterable[BookingsError] = (), headers: dict[str, Any] | None = None
) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a rate-limited route: ``problem_responses`` plus ``429``, and the ``RateLimit`` fields
    (with any other ``headers``) on its ``success`` status."""
    return {
        success: {"headers": {**(headers or {}), **RATE_LIMIT_HEADERS}},
        **problem_responses(*sorted({*statuses, RateLimited.status}), examples=examples),
    }
