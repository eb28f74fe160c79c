"""One chaos run: deploy, load while faults strike, settle, check; the processes are stopped whatever happens."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from tests.support.api import Account, account, admin_account

from chaos.checks import Run, evaluate
from chaos.config import INSTANCES, ChaosConfig
from chaos.deployment import Deployment
from chaos.faults import FaultInjector, schedule
from chaos.listeners import AdminListener
from chaos.load import Load
from chaos.report import Check, table
from chaos.snapshot import settle
from chaos.traffic import Traffic


@dataclass
class Outcome:
    summary: list[str]
    unsettled: list[str]
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return not self.unsettled and all(check.ok for check in self.checks)

    def render(self) -> str:
        lines = [*self.summary, *(f"did not settle: {what}" for what in self.unsettled), "", table(self.checks)]
        return "\n".join(lines)


async def run(config: ChaosConfig, workdir: Path, say: Callable[[str], None] = print) -> Outcome:
    deployment = await asyncio.to_thread(Deployment.create, workdir, config.service_env())
    try:
        return await _run(config, deployment, say)
    finally:
        await asyncio.to_thread(deployment.stop)


async def _start(deployment: Deployment) -> None:
    """``a`` first, so that it takes the relay's lock; then ``b`` and the worker."""
    await asyncio.to_thread(deployment.start_instance, INSTANCES[0])
    await asyncio.to_thread(deployment.wait_for_leader)
    await asyncio.gather(
        asyncio.to_thread(deployment.start_instance, INSTANCES[1]), asyncio.to_thread(deployment.start_worker)
    )


async def _accounts(deployment: Deployment, config: ChaosConfig) -> tuple[list[Account], list[Account], Account]:
    async with httpx.AsyncClient(base_url=deployment.url(INSTANCES[0]), timeout=30) as client:
        users = await asyncio.gather(*(account(client, "user") for _ in range(config.users)))
        providers = await asyncio.gather(*(account(client, "provider") for _ in range(config.providers)))
        admin = await admin_account(client, deployment.db_url, deployment.env["BOOKINGS_JWT_KEYS"])
    return list(users), list(providers), admin


async def _run(config: ChaosConfig, deployment: Deployment, say: Callable[[str], None]) -> Outcome:
    await _start(deployment)
    users, providers, admin = await _accounts(deployment, config)
    listeners = [AdminListener(name, deployment.url(name), admin.token) for name in INSTANCES]
    listening = [asyncio.create_task(listener.run()) for listener in listeners]
    traffic = Traffic(
        {name: deployment.url(name) for name in INSTANCES}, random.Random(config.seed + 1), config.request_timeout
    )
    load = Load(config, traffic, users, providers)
    injector = FaultInjector(
        deployment, random.Random(config.seed + 2), config.down_seconds, traffic.in_flight.__getitem__
    )
    loop = asyncio.get_running_loop()
    say(f"load for {config.duration:.0f} s, {len(schedule(config))} faults (logs in {deployment.cluster.tmp})")
    started = loop.time()
    faults = asyncio.create_task(injector.run(started, schedule(config)))
    try:
        await load.run(lambda: faults.done() and loop.time() - started >= config.duration)
        await faults  # a fault that could not be injected (an instance that would not restart) ends the run
        elapsed, cutoff = loop.time() - started, datetime.now(UTC)
        say(f"load done after {elapsed:.1f} s; settling")
        snapshot, unsettled = await settle(deployment, listeners, cutoff, config.settle_timeout)
    finally:
        faults.cancel()
        for task in listening:
            task.cancel()
        await asyncio.gather(*listening, faults, return_exceptions=True)
        await traffic.aclose()
    lead = timedelta(seconds=config.lead_seconds)
    checks = evaluate(Run(traffic.attempts, snapshot, listeners, injector, started, cutoff, lead))
    summary = [
        f"seed {config.seed}: {elapsed:.1f} s of load, {len(traffic.attempts)} requests "
        f"({len(traffic.attempts) / elapsed:.1f}/s), {load.skipped} ticks skipped (too many in flight)",
        *injector.timeline,
    ]
    return Outcome(summary, unsettled, checks)
