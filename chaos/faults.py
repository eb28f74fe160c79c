"""The faults: SIGKILL the relay's leader, the other API instance and the worker, and restart Redis empty.

Each round runs the four in that order (standby first, so that over two rounds each instance is killed once
as the leader and once as the standby), spread evenly over the first 80 % of the load. Every outage is
recorded from just before the kill until the part is ready again: the only time a client may see its
connection refused or dropped.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from chaos.config import INSTANCES, ChaosConfig
from chaos.deployment import Deployment

FAULTS = ("standby", "leader", "worker", "redis")
BUSY_WAIT_SECONDS = 1.0


@dataclass
class Outage:
    fault: str
    target: str  # an instance name, "worker" or "redis"
    down_at: float  # event-loop time
    up_at: float | None = None

    def meets(self, start: float, end: float, grace: float) -> bool:
        """Whether ``[start, end]`` meets the outage, or ends less than ``grace`` seconds after it."""
        up = math.inf if self.up_at is None else self.up_at
        return self.down_at <= end and start <= up + grace


def schedule(config: ChaosConfig) -> list[tuple[float, str]]:
    """(seconds after the load starts, fault), evenly over 10-80 % of the run."""
    faults = list(FAULTS) * config.rounds
    first, last = 0.1 * config.duration, 0.8 * config.duration
    step = (last - first) / max(1, len(faults) - 1)
    return [(first + index * step, fault) for index, fault in enumerate(faults)]


def _other(name: str) -> str:
    return next(other for other in INSTANCES if other != name)


class FaultInjector:
    def __init__(
        self,
        deployment: Deployment,
        rng: random.Random,
        down_seconds: tuple[float, float],
        in_flight: Callable[[str], int],
    ) -> None:
        self._deployment = deployment
        self._in_flight = in_flight
        self._rng = rng
        self._down_seconds = down_seconds
        self.outages: list[Outage] = []
        self.timeline: list[str] = []

    async def run(self, start: float, plan: list[tuple[float, str]]) -> None:
        """Inject each fault at its time (or as soon as the one before has recovered)."""
        loop = asyncio.get_running_loop()
        for at, fault in plan:
            await asyncio.sleep(max(0.0, start + at - loop.time()))
            await self._inject(fault, start)

    async def _inject(self, fault: str, start: float) -> None:
        if fault in ("leader", "standby"):
            outage, note = await self._kill_instance(fault)
        else:
            outage, note = await self._kill_part(fault)
        outage.up_at = asyncio.get_running_loop().time()
        self.timeline.append(
            f"{outage.down_at - start:5.1f} s  SIGKILL {fault:<7} ({outage.target}){note}; "
            f"up again after {outage.up_at - outage.down_at:.1f} s"
        )

    async def _kill_instance(self, fault: str) -> tuple[Outage, str]:
        """The leader or the standby, killed while a request is in flight to it, restarted on its port."""
        deployment = self._deployment
        leader = await asyncio.to_thread(deployment.wait_for_leader)
        target = leader if fault == "leader" else _other(leader)
        await self._until_busy(target)
        outage = self._begin(fault, target)
        deployment.kill_instance(target)  # SIGKILL and reap, in a few ms: requests in flight stay in flight
        await asyncio.sleep(self._rng.uniform(*self._down_seconds))
        note = f", {await asyncio.to_thread(deployment.wait_for_leader)} took the lead" if fault == "leader" else ""
        await asyncio.to_thread(deployment.start_instance, target)
        return outage, note

    async def _kill_part(self, fault: str) -> tuple[Outage, str]:
        """The worker, or Redis (restarted empty on its port)."""
        deployment = self._deployment
        if fault == "worker":
            kill, restart = deployment.kill_worker, deployment.start_worker
        else:
            kill, restart = deployment.kill_redis, deployment.start_redis
        outage = self._begin(fault, fault)
        await asyncio.to_thread(kill)
        await asyncio.sleep(self._rng.uniform(*self._down_seconds))
        await asyncio.to_thread(restart)
        return outage, ", restarted empty" if fault == "redis" else ""

    async def _until_busy(self, instance: str) -> None:
        """Wait (a second at most) until a request is in flight to ``instance``: killed mid-request, it leaves the
        client not knowing whether its change committed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + BUSY_WAIT_SECONDS
        while loop.time() < deadline:
            if self._in_flight(instance):
                return
            await asyncio.sleep(0.002)

    def _begin(self, fault: str, target: str) -> Outage:
        outage = Outage(fault, target, asyncio.get_running_loop().time())
        self.outages.append(outage)
        return outage
