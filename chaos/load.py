"""The load: creates (a quarter of them in bursts racing for one slot), reschedules and cancels, at a bounded rate.

Most slots are "soon": two seconds long on a one-second grid, starting 2-18 s after the reminder lead, so that
neighbours half-overlap and reminders fall due during the run. The rest are one-hour slots a month ahead on a
half-hour grid, few enough to be fought over. A booking is never asked twice to move to the same start time:
each (booking, start time) is then reminded at most once, by promise.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support.api import Account, iso

from chaos.config import ChaosConfig
from chaos.traffic import Traffic

GRID_SECONDS = 1.0
SOON_POSITIONS = 16
SOON_SHARE = 0.7
FAR_POSITIONS = 24
BURST = (3, 5)  # users racing for one slot
MAX_ACTIONS_IN_FLIGHT = 40  # beyond this a tick is skipped: the load never piles up on a slow service
# Share of actions: a contested burst, a single create, a reschedule; the rest cancel.
MIX = (0.25, 0.6, 0.85)

Slot = tuple[datetime, datetime]


@dataclass
class Held:
    """A booking its user believes confirmed: something to reschedule or cancel."""

    id: str
    user: Account
    provider: Account
    starts: set[datetime] = field(default_factory=set)


class Load:
    def __init__(self, config: ChaosConfig, traffic: Traffic, users: list[Account], providers: list[Account]) -> None:
        self._config = config
        self._traffic = traffic
        self._users = users
        self._providers = providers
        self._rng = random.Random(config.seed)
        self._far_base = (datetime.now(UTC) + timedelta(days=30)).replace(hour=8, minute=0, second=0, microsecond=0)
        self._held: dict[str, Held] = {}
        self._busy: set[str] = set()
        self._tags = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        self.skipped = 0

    async def run(self, done: Callable[[], bool]) -> None:
        """Act until ``done()``, then wait for every request in flight."""
        burst = sum(BURST) / 2
        requests_per_action = MIX[0] * burst + (1 - MIX[0])
        interval = requests_per_action / self._config.rate
        while not done():
            if len(self._tasks) < MAX_ACTIONS_IN_FLIGHT:
                self._spawn(self._action())
            else:
                self.skipped += 1
            await asyncio.sleep(self._rng.uniform(0.5, 1.5) * interval)
        await asyncio.gather(*self._tasks)

    def _spawn(self, action: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(action)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _action(self) -> None:
        draw = self._rng.random()
        if draw < MIX[0]:
            await self._contested()
        elif draw < MIX[1] or not self._held:
            await self._create(self._rng.choice(self._users), self._rng.choice(self._providers), self._slot())
        elif draw < MIX[2]:
            await self._reschedule()
        else:
            await self._cancel()

    def _slot(self) -> Slot:
        if self._rng.random() < SOON_SHARE:
            earliest = time.time() + self._config.lead_seconds + 2
            index = math.ceil(earliest / GRID_SECONDS) + self._rng.randrange(SOON_POSITIONS)
            start = datetime.fromtimestamp(index * GRID_SECONDS, UTC)
            return start, start + timedelta(seconds=2 * GRID_SECONDS)
        start = self._far_base + timedelta(minutes=30 * self._rng.randrange(FAR_POSITIONS))
        return start, start + timedelta(hours=1)

    def _half_shifted(self, slot: Slot) -> Slot:
        half = (slot[1] - slot[0]) / 2
        return slot[0] + half, slot[1] + half

    async def _contested(self) -> None:
        """Several users at once for one provider's slot, some of them half a slot later: one at most wins."""
        provider, slot = self._rng.choice(self._providers), self._slot()
        users = self._rng.sample(self._users, self._rng.randint(*BURST))
        slots = [self._half_shifted(slot) if self._rng.random() < 0.25 else slot for _ in users]
        await asyncio.gather(*(self._create(u, provider, s) for u, s in zip(users, slots, strict=True)))

    async def _create(self, user: Account, provider: Account, slot: Slot) -> None:
        tag = f"create-{next(self._tags)}"
        body = {"providerId": provider.id, "startTime": iso(slot[0]), "endTime": iso(slot[1]), "notes": tag}
        attempt = await self._traffic.send("create", tag, "POST", "/v1/bookings", user.token, body)
        if attempt.status == 201 and attempt.body is not None:
            booking_id = attempt.body["id"]
            self._held[booking_id] = Held(booking_id, user, provider, {slot[0]})

    def _idle_booking(self) -> Held | None:
        idle = [held for held in self._held.values() if held.id not in self._busy]
        return self._rng.choice(idle) if idle else None

    async def _reschedule(self) -> None:
        held = self._idle_booking()
        if held is None:
            return
        slot = self._slot()
        if slot[0] in held.starts:
            return
        held.starts.add(slot[0])
        self._busy.add(held.id)
        try:
            body = {"startTime": iso(slot[0]), "endTime": iso(slot[1])}
            tag = f"reschedule-{next(self._tags)}"
            await self._traffic.send("reschedule", tag, "PATCH", f"/v1/bookings/{held.id}", held.user.token, body)
        finally:
            self._busy.discard(held.id)

    async def _cancel(self) -> None:
        held = self._idle_booking()
        if held is None:
            return
        del self._held[held.id]  # whatever the answer: a booking is cancelled at most once
        tag = f"cancel-{next(self._tags)}"
        await self._traffic.send("cancel", tag, "POST", f"/v1/bookings/{held.id}/cancel", held.user.token)
