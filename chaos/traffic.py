"""HTTP to the two instances as a load balancer would send it, and a record of every request and its outcome.

Each request goes to one instance at random; if that one refuses the connection (it is down: the request
was never sent), it goes to the other. A request that was sent but got no answer is recorded as ``dropped``
or ``timeout``: whether its change committed is unknown, and the checks accept either.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class Attempt:
    op: str  # "create", "reschedule" or "cancel"
    tag: str  # one per operation; a create's notes, so a stored booking names the request that made it
    instance: str
    started: float  # event-loop time
    ended: float
    status: int | None = None
    error: str | None = None  # "refused" (never sent), "dropped" (sent, no answer), "timeout"
    body: dict[str, Any] | None = None  # the answer, when it is a 2xx

    @property
    def unknown(self) -> bool:
        """Sent, but no answer came: the change may or may not have committed."""
        return self.status is None and self.error != "refused"


class Traffic:
    def __init__(self, urls: dict[str, str], rng: random.Random, timeout: float) -> None:
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
        self._clients = {
            name: httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits) for name, url in urls.items()
        }
        self._rng = rng
        self.attempts: list[Attempt] = []
        self.in_flight: Counter[str] = Counter()  # requests sent to each instance and not yet answered

    async def send(self, op: str, tag: str, method: str, path: str, token: str, body: Any = None) -> Attempt:
        names = list(self._clients)
        self._rng.shuffle(names)
        for name in names:
            attempt = await self._once(name, op, tag, method, path, token, body)
            self.attempts.append(attempt)
            if attempt.error != "refused":
                break
        return attempt

    async def _once(self, name: str, op: str, tag: str, method: str, path: str, token: str, body: Any) -> Attempt:
        loop = asyncio.get_running_loop()
        attempt = Attempt(op, tag, name, started=loop.time(), ended=0.0)
        self.in_flight[name] += 1
        try:
            response = await self._clients[name].request(
                method, path, json=body, headers={"Authorization": f"Bearer {token}"}
            )
        except httpx.ConnectError:
            attempt.error = "refused"
        except httpx.TimeoutException:
            attempt.error = "timeout"
        except httpx.TransportError:
            attempt.error = "dropped"
        else:
            attempt.status = response.status_code
            if response.is_success:
                attempt.body = response.json()
        finally:
            self.in_flight[name] -= 1
        attempt.ended = loop.time()
        return attempt

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
