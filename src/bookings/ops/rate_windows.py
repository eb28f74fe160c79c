"""Moving-window counters for the rate limiter: in this process, or in Redis for every instance at once.

A request counts against a window for exactly the window's length after it was made. In Redis one script tests
and counts every window of a policy: one round trip (the ``limits`` library's strategies take one per step), and
two racing requests cannot both take the last place.
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis
from limits import RateLimitItem


@dataclass(frozen=True, slots=True)
class Count:
    """An item's standing after a request: what is left in its window, and in how long the oldest hit leaves it."""

    remaining: int
    reset_in: float  # seconds


class Windows(Protocol):
    async def hit(self, key: str, items: tuple[RateLimitItem, ...]) -> tuple[bool, list[Count]]:
        """Atomically: when every item's moving window has room, count one request in each of them.

        Returns whether the request was counted, and each item's standing afterwards.
        """


class MemoryWindows:
    """Moving windows in this process: the timestamps of the hits each window still holds, oldest first."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._hits: dict[str, deque[float]] = {}
        self._clock = clock

    async def hit(self, key: str, items: tuple[RateLimitItem, ...]) -> tuple[bool, list[Count]]:
        now = self._clock()
        windows = []
        for item in items:
            hits = self._hits.setdefault(f"{key}:{item.get_expiry()}", deque())
            while hits and hits[0] <= now - item.get_expiry():
                hits.popleft()
            windows.append(hits)
        allowed = all(len(hits) < item.amount for hits, item in zip(windows, items, strict=True))
        if allowed:
            for hits in windows:
                hits.append(now)
        counts = [
            Count(item.amount - len(hits), (hits[0] + item.get_expiry() - now) if hits else float(item.get_expiry()))
            for hits, item in zip(windows, items, strict=True)
        ]
        return allowed, counts


# KEYS: one sorted set per item (hits scored by time); ARGV: a unique member, then amount and expiry per item.
# Redis's own clock, so that every instance counts on one time line.
MOVING_WINDOWS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local allowed = 1
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - tonumber(ARGV[2 * i + 1]))
  if redis.call('ZCARD', key) >= tonumber(ARGV[2 * i]) then allowed = 0 end
end
local out = {allowed}
for i, key in ipairs(KEYS) do
  local expiry = tonumber(ARGV[2 * i + 1])
  if allowed == 1 then
    redis.call('ZADD', key, now, ARGV[1])
    redis.call('EXPIRE', key, expiry)
  end
  local count = redis.call('ZCARD', key)
  local reset = expiry
  if count > 0 then
    reset = tonumber(redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')[2]) + expiry - now
  end
  table.insert(out, tonumber(ARGV[2 * i]) - count)
  table.insert(out, math.floor(reset * 1000))
end
return out
"""


class RedisWindows:
    """Moving windows in Redis, shared by every instance: one script, one round trip, no check-then-act race."""

    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self._script = redis.register_script(MOVING_WINDOWS)
        self._prefix = prefix

    async def hit(self, key: str, items: tuple[RateLimitItem, ...]) -> tuple[bool, list[Count]]:
        keys = [f"{self._prefix}:{key}:{item.get_expiry()}" for item in items]
        args: list[str | int] = [secrets.token_hex(8)]
        for item in items:
            args += [item.amount, item.get_expiry()]
        reply = await self._script(keys=keys, args=args)
        counts = [Count(int(reply[i]), int(reply[i + 1]) / 1000) for i in range(1, len(reply), 2)]
        return bool(reply[0]), counts
