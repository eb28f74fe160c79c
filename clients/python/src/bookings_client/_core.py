"""What the sync and the async clients share: arguments, retry policy, token state, response parsing."""

from __future__ import annotations

import random
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID
from zoneinfo import ZoneInfo

import httpx
import pydantic

from bookings_client.errors import (
    IDEMPOTENCY_KEY_IN_USE,
    APIConnectionError,
    InvalidArgumentError,
    error_from,
    parse_retry_after,
)
from bookings_client.models import TokenPair

M = TypeVar("M", bound=pydantic.BaseModel)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({502, 503, 504})
IDEMPOTENCY_KEY = "Idempotency-Key"
# What the service accepts as a key: 1-255 visible ASCII characters.
_VALID_KEY = re.compile(r"[\x21-\x7e]{1,255}")
# Failures after which a request may or may not have reached the service (and been applied): a keyed write
# is repeated after them, since the service replays the first outcome instead of applying it again. Not the
# client's own mistakes (LocalProtocolError, UnsupportedProtocol), which a repeat would only make again.
_MAY_HAVE_ARRIVED = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_RETRIES = 3
USER_AGENT = "bookings-client-python/0.1.0"


def aware(name: str, value: datetime) -> datetime:
    """``value`` if it carries a UTC offset; a naive datetime would be read in some unknown zone, so it is refused."""
    if not isinstance(value, datetime):
        raise InvalidArgumentError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidArgumentError(
            f"{name} must be timezone-aware (e.g. datetime(2030, 5, 1, 9, tzinfo=timezone.utc)); got naive {value!r}"
        )
    return value


def as_uuid(name: str, value: UUID | str) -> UUID:
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except ValueError:
        raise InvalidArgumentError(f"{name} must be a UUID, got {value!r}") from None


def as_date(name: str, value: date) -> str:
    """A calendar date as ``YYYY-MM-DD``. A ``datetime`` is refused: which date it falls on depends on a zone."""
    if isinstance(value, datetime) or not isinstance(value, date):
        raise InvalidArgumentError(f"{name} must be a date (datetime.date, not a datetime), got {value!r}")
    return value.isoformat()


def instant(name: str, value: datetime) -> str:
    """An aware ``datetime`` as an RFC 3339 instant in UTC (``2030-05-01T07:00:00Z``)."""
    return aware(name, value).astimezone(UTC).isoformat().replace("+00:00", "Z")


def search_window(first: date | datetime, last: date | datetime) -> dict[str, str]:
    """A slot search's ``from``/``to``: two dates (inclusive, read in the search's zone), or two aware datetimes
    (the window ``[from, to)``); one of each is refused, as the service would."""
    if isinstance(first, datetime) and isinstance(last, datetime):
        return {"from": instant("from_", first), "to": instant("to", last)}
    if isinstance(first, datetime) or isinstance(last, datetime):
        raise InvalidArgumentError("from_ and to must be both dates or both datetimes")
    return {"from": as_date("from_", first), "to": as_date("to", last)}


def zone_name(value: str | ZoneInfo | None) -> dict[str, str]:
    """A ``timeZone`` query parameter: an IANA name (``"America/New_York"``), or a ``ZoneInfo``'s key."""
    if value is None:
        return {}
    if isinstance(value, ZoneInfo) and value.key:
        return {"timeZone": value.key}
    if not isinstance(value, str) or not value:
        raise InvalidArgumentError(f"time_zone must be an IANA zone name or a ZoneInfo, got {value!r}")
    return {"timeZone": value}


def checked_key(value: str | None) -> str:
    """The caller's key, checked as the service would check it, or a new random one (one per logical call)."""
    if value is None:
        return str(uuid.uuid4())
    if not isinstance(value, str) or not _VALID_KEY.fullmatch(value):
        raise InvalidArgumentError(f"idempotency_key must be 1 to 255 visible ASCII characters, got {value!r}")
    return value


def if_match_header(value: int | str | None) -> dict[str, str]:
    """An ``If-Match`` header: a ``version`` (``3`` becomes ``"3"``) or an ``ETag`` as the service sent it."""
    if value is None:
        return {}
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidArgumentError(f"if_match must be a version (int) or an ETag (str), got {value!r}")
    if isinstance(value, int):
        return {"If-Match": f'"{value}"'}
    if not value.strip() or any(ch in value for ch in "\r\n\0"):
        raise InvalidArgumentError(f"if_match must be an ETag such as '\"3\"', got {value!r}")
    return {"If-Match": value}


def paging(page: int, limit: int, cursor: str | None) -> dict[str, Any]:
    """A list's query: by cursor (which the server refuses beside ``page``), else by page number."""
    return {"limit": limit, "cursor": cursor} if cursor is not None else {"page": page, "limit": limit}


def body(model: pydantic.BaseModel) -> dict[str, Any]:
    """A request body in wire form: camelCase, RFC 3339 times, fields left unset omitted."""
    return model.model_dump(mode="json", by_alias=True, exclude_unset=True)


def parse(model: type[M], response: httpx.Response) -> M:
    return model.model_validate_json(response.content)


def raise_for_status(response: httpx.Response) -> None:
    if response.status_code >= 400:
        raise error_from(response)


def websocket_url(base_url: str) -> str:
    parts = urlsplit(base_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/ws", "", ""))


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, for transient failures of requests that are safe to repeat.

    A request is repeated when its method is idempotent by HTTP (GET, HEAD, OPTIONS, PUT, DELETE) and it failed
    with a connection error, a timeout or a 502/503/504.

    A POST or PATCH that carries an ``Idempotency-Key`` (``keyed``: create, reschedule, update, cancel) is repeated,
    with the same key, after a failure where it may have reached the service (a reset or dropped connection, a
    timeout), after a 502/503/504, and after a 409 ``idempotency-key-in-use`` (the first attempt is still running):
    the service applies it at most once and answers a repeat with the first outcome.

    Any other POST or PATCH (login, refresh, logout, register) is repeated only when the connection was never made
    (the request cannot have reached the service), never after a timeout or an error status.

    ``Retry-After`` is honoured, capped at ``max_backoff``.
    """

    max_retries: int = DEFAULT_MAX_RETRIES
    backoff: float = 0.25
    max_backoff: float = 8.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        ceiling = min(self.max_backoff, self.backoff * (2**attempt))
        wait = random.uniform(ceiling / 2, ceiling)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_backoff))
        return wait

    def retry_on_error(self, method: str, error: httpx.TransportError, attempt: int, *, keyed: bool = False) -> bool:
        if attempt >= self.max_retries:
            return False
        if method in IDEMPOTENT_METHODS:
            return True
        if isinstance(error, httpx.ConnectError | httpx.ConnectTimeout):
            return True  # the request cannot have reached the service
        return keyed and isinstance(error, _MAY_HAVE_ARRIVED)

    def retry_on_status(
        self, method: str, response: httpx.Response, attempt: int, *, keyed: bool = False
    ) -> float | None:
        """The delay before retrying, or None to give the response to the caller."""
        if attempt >= self.max_retries or not (keyed or method in IDEMPOTENT_METHODS):
            return None
        if response.status_code not in RETRY_STATUSES and not (keyed and _key_in_use(response)):
            return None
        return self.delay(attempt, parse_retry_after(response.headers.get("retry-after")))


def _key_in_use(response: httpx.Response) -> bool:
    """A 409 that says another request with the same ``Idempotency-Key`` is still running (so: wait, repeat)."""
    if response.status_code != 409:
        return False
    try:
        problem = response.json()
    except ValueError:
        return False
    return isinstance(problem, dict) and problem.get("type") == IDEMPOTENCY_KEY_IN_USE


def connection_error(error: httpx.TransportError, method: str, url: str) -> APIConnectionError:
    return APIConnectionError(f"{method} {url}: {type(error).__name__}: {error or 'no answer'}")


@dataclass
class TokenState:
    """The signed-in session: tokens and when the access token stops working (monotonic clock)."""

    tokens: TokenPair | None = None
    expires_at: float = 0.0
    generation: int = 0
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)

    def set(self, tokens: TokenPair | None) -> None:
        self.tokens = tokens
        self.generation += 1
        self.expires_at = self.clock() + tokens.expires_in if tokens is not None else 0.0

    def needs_refresh(self) -> bool:
        """True shortly before the access token expires: a fifth of its lifetime early, at most 30 s."""
        if self.tokens is None:
            return False
        margin = min(30.0, self.tokens.expires_in * 0.2)
        return self.clock() >= self.expires_at - margin

    @property
    def access_token(self) -> str | None:
        return self.tokens.access_token if self.tokens is not None else None
