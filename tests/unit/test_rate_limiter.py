"""The limiter's arithmetic on its in-memory store: several windows per policy, the fields it reports, addresses."""

from __future__ import annotations

import pytest
from fastapi import Request, Response

from bookings.errors import RateLimited
from bookings.ops.metrics import Metrics
from bookings.ops.rate_limits import Policy, RateLimiter, client_address
from bookings.ops.rate_windows import MemoryWindows


def _request(client: str = "192.0.2.7") -> Request:
    return Request({"type": "http", "method": "POST", "path": "/", "headers": [], "client": (client, 50000)})


def _limiter(**specs: str) -> RateLimiter:
    return RateLimiter(MemoryWindows(), {name: Policy.parse(name, spec) for name, spec in specs.items()}, Metrics())


async def _attempts(limiter: RateLimiter, name: str, count: int) -> list[Response | RateLimited]:
    outcomes: list[Response | RateLimited] = []
    for _ in range(count):
        response = Response()
        try:
            await limiter.hit(name, "key", _request(), response)
        except RateLimited as refused:
            outcomes.append(refused)
        else:
            outcomes.append(response)
    return outcomes


async def test_a_request_refused_by_one_window_does_not_use_up_the_others() -> None:
    limiter = _limiter(login="2/minute;5/hour")
    outcomes = await _attempts(limiter, "login", 10)
    assert [isinstance(o, Response) for o in outcomes] == [True, True] + [False] * 8
    # Eight refusals later, the hourly window has still counted only the two requests that got through.
    last = outcomes[-1]
    assert isinstance(last, RateLimited)
    assert last.headers["RateLimit-Policy"] == '"login-60s";q=2;w=60, "login-3600s";q=5;w=3600'
    assert last.headers["RateLimit"].startswith('"login-60s";r=0;')
    assert 1 <= last.retry_after <= 60


async def test_every_policy_a_request_meets_is_reported() -> None:
    limiter = _limiter(address="5/minute", account="3/minute")
    request, response = _request(), Response()
    await limiter.hit("address", "192.0.2.7", request, response)
    await limiter.hit("account", "192.0.2.7 ada@example.com", request, response)
    assert response.headers["RateLimit-Policy"] == '"address";q=5;w=60, "account";q=3;w=60'
    assert response.headers["RateLimit"] == '"address";r=4;t=60, "account";r=2;t=60'


async def test_an_empty_policy_counts_nothing_and_says_nothing() -> None:
    limiter = _limiter(login="")
    outcomes = await _attempts(limiter, "login", 3)
    assert all(isinstance(o, Response) and "RateLimit" not in o.headers for o in outcomes)


@pytest.mark.parametrize(
    ("client", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),  # the same /64: one host, one key
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("testclient", "testclient"),
    ],
)
def test_addresses_are_keyed_by_host_and_ipv6_by_its_64(client: str, key: str) -> None:
    assert client_address(_request(client)) == key
