"""Rate limits on the routes worth abusing (login, booking creation), shared by every instance through Redis.

Counts are kept by the ``limits`` library with its moving-window strategy: in process memory in embedded mode, in
Redis in distributed mode, so that N instances enforce one limit, not N. Every limited response says where the
caller stands with the ``RateLimit-Policy`` and ``RateLimit`` fields of the IETF draft
(draft-ietf-httpapi-ratelimit-headers), and a refused one is a ``429`` problem with ``Retry-After``.

When the counter store cannot be reached the request is let through and the failure logged: an outage of Redis
must not take login and booking down with it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated

import redis.asyncio as aioredis
import structlog
from fastapi import Depends, Request, Response
from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from bookings.config import Settings
from bookings.errors import RateLimited
from bookings.ops.metrics import Metrics

log = structlog.get_logger("bookings.rate_limits")

LOGIN = "login"
CREATE_BOOKING = "create-booking"


@dataclass(frozen=True)
class Policy:
    """One named limit: one or more ``N per window`` items, all of which must allow a request."""

    name: str
    items: tuple[RateLimitItem, ...]

    @classmethod
    def parse(cls, name: str, spec: str) -> Policy:
        """``"10/minute"`` or ``"10/minute;100/hour"``; an empty spec means no limit."""
        return cls(name, tuple(parse_many(spec)) if spec.strip() else ())

    def header(self) -> str:
        return ", ".join(f'"{self.name}";q={item.amount};w={item.get_expiry()}' for item in self.items)


class RateLimiter:
    def __init__(self, storage: Storage, policies: Mapping[str, Policy], metrics: Metrics) -> None:
        self._limiter = MovingWindowRateLimiter(storage)
        self._policies = dict(policies)
        self._metrics = metrics

    async def hit(self, name: str, key: str, request: Request, response: Response) -> None:
        """Count one request against ``name`` for ``key``; raise ``RateLimited`` once it is over the limit.

        The caller's standing goes into ``response``'s headers and, for a request that ends in an error (a wrong
        password, a taken slot, the ``429`` itself), into its problem response's (``errors.problem_response``).
        """
        policy = self._policies[name]
        if not policy.items:
            return
        try:
            allowed = [await self._limiter.hit(item, name, key) for item in policy.items]
            stats = [await self._limiter.get_window_stats(item, name, key) for item in policy.items]
        except Exception as exc:  # the counter store is down: fail open, never fail the request
            log.warning("rate_limit_unavailable", limit=name, error=type(exc).__name__)
            return
        # The tightest item is the one to report: the fewest left, then the longest wait.
        remaining, reset_time = min((s.remaining, -s.reset_time) for s in stats)
        reset = max(0, math.ceil(-reset_time - time.time()))
        headers = {"RateLimit-Policy": policy.header(), "RateLimit": f'"{name}";r={remaining};t={reset}'}
        response.headers.update(headers)
        request.state.response_headers = headers
        if all(allowed):
            return
        self._metrics.rate_limited.labels(name).inc()
        refused = [s for s, ok in zip(stats, allowed, strict=True) if not ok]
        retry_after = max(1, max(math.ceil(s.reset_time - time.time()) for s in refused))
        raise RateLimited(f"Too many requests; retry in {retry_after} s.", retry_after=retry_after, headers=headers)


def rate_limiter_from_settings(settings: Settings, redis: aioredis.Redis | None, metrics: Metrics) -> RateLimiter:
    """Counts in ``redis`` (sharing its connection pool, which its owner closes) or, without it, in memory."""
    storage: Storage
    if redis is not None and settings.redis_url:
        storage = RedisStorage(
            "async+" + settings.redis_url,
            implementation="redispy",
            key_prefix=f"{settings.redis_prefix}:rate",
            wrap_exceptions=True,
            connection_pool=redis.connection_pool,  # type: ignore[arg-type]  # documented, typed narrower
        )
    else:
        storage = MemoryStorage()
    policies = {
        LOGIN: Policy.parse(LOGIN, settings.rate_limit_login),
        CREATE_BOOKING: Policy.parse(CREATE_BOOKING, settings.rate_limit_bookings),
    }
    return RateLimiter(storage, policies, metrics)


async def _rate_limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.rate_limiter
    return limiter


Limits = Annotated[RateLimiter, Depends(_rate_limiter)]


def client_address(request: Request) -> str:
    """The caller's address (behind a trusted proxy, uvicorn has already taken it from ``X-Forwarded-For``)."""
    return request.client.host if request.client else "unknown"
