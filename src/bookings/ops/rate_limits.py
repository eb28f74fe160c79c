"""Rate limits on the routes worth abusing (login, booking creation), shared by every instance through Redis.

Counts are moving windows (a request counts for exactly one window's length after it was made): in process memory
in embedded mode, in Redis in distributed mode, so that N instances enforce one limit, not N. In Redis one script
tests and counts every window of a policy at once (``rate_windows``). Every limited response says where the caller
stands with the ``RateLimit-Policy`` and ``RateLimit`` fields of the IETF draft
(draft-ietf-httpapi-ratelimit-headers), and a refused one is a ``429`` problem with ``Retry-After``.

When the counter store cannot be reached the request is let through and the failure logged: an outage of Redis
must not take login and booking down with it.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated

import redis.asyncio as aioredis
import structlog
from fastapi import Depends, Request, Response
from limits import RateLimitItem, parse_many

from bookings.config import Settings
from bookings.errors import RateLimited
from bookings.ops.metrics import Metrics
from bookings.ops.rate_windows import MemoryWindows, RedisWindows, Windows

log = structlog.get_logger("bookings.rate_limits")

LOGIN = "login"  # per client address and account
LOGIN_ADDRESS = "login-address"  # per client address, whatever the account (password spraying)
REGISTER = "register"  # per client address (each registration costs an argon2id hash)
CREATE_BOOKING = "create-booking"  # per user
CALENDAR_FEED = "calendar-feed"  # per feed (its secret's hash)

# After the counter store fails, requests go uncounted for this long rather than each waiting for its timeout.
PAUSE_AFTER_FAILURE_SECONDS = 5.0


@dataclass(frozen=True)
class Policy:
    """One named limit: one or more ``N per window`` items, all of which must allow a request."""

    name: str
    items: tuple[RateLimitItem, ...]

    @classmethod
    def parse(cls, name: str, spec: str) -> Policy:
        """``"10/minute"`` or ``"10/minute;100/hour"``; an empty spec means no limit."""
        return cls(name, tuple(parse_many(spec)) if spec.strip() else ())

    def item_name(self, item: RateLimitItem) -> str:
        """The name a client sees: the policy's, suffixed with the window when there are several."""
        return self.name if len(self.items) == 1 else f"{self.name}-{item.get_expiry()}s"


@dataclass
class Standing:
    """What the ``RateLimit-Policy`` and ``RateLimit`` fields say for one request (one entry per policy met)."""

    policies: list[str] = field(default_factory=list)
    limits: list[str] = field(default_factory=list)

    def headers(self) -> dict[str, str]:
        return {"RateLimit-Policy": ", ".join(self.policies), "RateLimit": ", ".join(self.limits)}


class RateLimiter:
    def __init__(self, windows: Windows, policies: Mapping[str, Policy], metrics: Metrics) -> None:
        self._windows = windows
        self._policies = dict(policies)
        self._metrics = metrics
        self._paused_until = 0.0

    async def hit(self, name: str, key: str, request: Request, response: Response) -> None:
        """Count one request against ``name`` for ``key``; raise ``RateLimited`` once it is over the limit.

        A request refused by one item is not counted against the others (a client hammering a per-minute limit
        does not also use up its hourly one). The caller's standing goes into ``response``'s headers and, for a
        request that ends in an error (a wrong password, a taken slot, the ``429`` itself), into its problem
        response's (``errors.problem_response``).
        """
        policy = self._policies[name]
        if not policy.items or time.monotonic() < self._paused_until:
            return
        try:
            allowed, counts = await self._windows.hit(f"{name}:{key}", policy.items)
        except Exception as exc:  # the counter store is down: fail open, never fail the request
            self._paused_until = time.monotonic() + PAUSE_AFTER_FAILURE_SECONDS
            log.warning("rate_limit_unavailable", limit=name, error=type(exc).__name__)
            return
        # The tightest item is the one to report: the fewest left, then the longest wait.
        tightest = min(range(len(counts)), key=lambda i: (counts[i].remaining, -counts[i].reset_in))
        reset = max(0, math.ceil(counts[tightest].reset_in))
        standing: Standing = getattr(request.state, "rate_limits", None) or Standing()
        standing.policies += [f'"{policy.item_name(i)}";q={i.amount};w={i.get_expiry()}' for i in policy.items]
        remaining = counts[tightest].remaining
        standing.limits.append(f'"{policy.item_name(policy.items[tightest])}";r={remaining};t={reset}')
        request.state.rate_limits = standing
        headers = standing.headers()
        response.headers.update(headers)
        request.state.response_headers = headers
        if allowed:
            return
        self._metrics.rate_limited.labels(name).inc()
        retry_after = max([1, *(math.ceil(c.reset_in) for c in counts if c.remaining == 0)])
        raise RateLimited(f"Too many requests; retry in {retry_after} s.", retry_after=retry_after, headers=headers)


def rate_limiter_from_settings(settings: Settings, redis: aioredis.Redis | None, metrics: Metrics) -> RateLimiter:
    """Counts in ``redis`` (sharing its connection pool, which its owner closes) or, without it, in memory."""
    windows: Windows = (
        RedisWindows(redis, f"{settings.redis_prefix}:rate")
        if redis is not None and settings.redis_url
        else MemoryWindows()
    )
    policies = {
        LOGIN: Policy.parse(LOGIN, settings.rate_limit_login),
        LOGIN_ADDRESS: Policy.parse(LOGIN_ADDRESS, settings.rate_limit_login_per_address),
        REGISTER: Policy.parse(REGISTER, settings.rate_limit_register),
        CREATE_BOOKING: Policy.parse(CREATE_BOOKING, settings.rate_limit_bookings),
        CALENDAR_FEED: Policy.parse(CALENDAR_FEED, settings.rate_limit_calendar_feed),
    }
    return RateLimiter(windows, policies, metrics)


async def _rate_limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.rate_limiter
    return limiter


Limits = Annotated[RateLimiter, Depends(_rate_limiter)]


def client_address(request: Request) -> str:
    """The caller's address, an IPv6 one as its /64 (what one host or home is given, so one key, not 2^64).

    Behind a proxy uvicorn has already taken it from ``X-Forwarded-For``, trusting the proxies named in
    ``FORWARDED_ALLOW_IPS``; the proxy must set that header itself, not append to the client's (see
    deploy/nginx/nginx.conf), or a client could pick its own address and its own rate-limit bucket.
    """
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host or "unknown"
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is None:
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address.ipv4_mapped or address) if isinstance(address, ipaddress.IPv6Address) else str(address)
