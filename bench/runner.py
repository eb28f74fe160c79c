"""Running the HTTP scenarios: progress lines, request-index ranges (so creates never overlap), one wrk scenario
on one server (warm-up, then a measured run with the CPU meter on and the connections spread over the workers),
and the interleaved rounds that compare the service with the plain baseline."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import math
import subprocess
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from bench.config import PROJECT_DIR, BenchConfig
from bench.cpu import CpuMeter
from bench.server import ServerProcess
from bench.wrk import BalanceCheck, LoadResult, LuaValue, run_wrk, write_script

BALANCE_ATTEMPTS = 6  # a measured run whose connections land unevenly on the workers is started again
# Request indexes each run may use per second: far above what two cores can serve, so a run never runs out.
MAX_RATE = 20_000


class Progress:
    def __init__(self) -> None:
        self.started = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def __call__(self, message: str) -> None:
        print(f"[{self.elapsed:6.1f}s] {message}", flush=True)


def git_commit() -> str:
    """The short commit id, and whether ``src/`` differs from it (the service measured is the work tree's)."""
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_DIR, capture_output=True, text=True, check=False
    )
    changed = subprocess.run(
        ["git", "status", "--porcelain", "--", "src"], cwd=PROJECT_DIR, capture_output=True, text=True, check=False
    )
    dirty = " + uncommitted changes in src/" if changed.stdout.strip() else ""
    return (done.stdout.strip() or "unknown") + dirty


class IndexRanges:
    """Request indexes handed out run by run, each run a range of its own.

    A create with index *i* books provider *i* mod P for the half-hour slot *i* div P after the base time, so runs
    with disjoint ranges (of either server: warm-ups, measured runs, re-runs, and the asyncpg INSERT baseline)
    never book the same slot. Every range is a whole number of slots for every provider.
    """

    def __init__(self, providers: int, rate: int = MAX_RATE) -> None:
        self.providers = providers
        self.rate = rate  # indexes per second of a run: far above what the server can answer
        self.used = 0

    def size(self, seconds: float) -> int:
        """How many indexes ``take`` hands out for a run of ``seconds`` at ``rate``."""
        room = (max(1, round(seconds)) + 1) * self.rate
        return math.ceil(room / self.providers) * self.providers

    def take(self, seconds: float) -> int:
        """The first index of a new range, big enough for a run of ``seconds`` at ``rate``."""
        first = self.used
        self.used += self.size(seconds)
        return first


@dataclass(frozen=True, slots=True)
class Series:
    """Every measured run of one scenario on one server, in the order they ran."""

    runs: tuple[LoadResult, ...]

    @property
    def best(self) -> LoadResult:
        """The run reported: the one with the most req/s (the same rule for every server)."""
        return max(self.runs, key=lambda r: r.rps)

    @property
    def errors(self) -> int:
        return sum(r.errors for r in self.runs)


def cpu_us(result: LoadResult) -> tuple[float, float, float] | None:
    """(service, PostgreSQL, Redis) µs of CPU per request of one measured run."""
    return result.cpu.per_request_us(result.requests) if result.cpu else None


def summary(result: LoadResult) -> str:
    errors = f"{result.errors} errors ({result.error_detail})" if result.errors else "0 errors"
    cpu = f"; cores: {result.cpu.describe()}" if result.cpu else ""
    cpu += f" [{result.cpu.other_top}]" if result.cpu and result.cpu.other > 0.1 and result.cpu.other_top else ""
    if (us := cpu_us(result)) is not None:
        cpu += f"; CPU per request: svc {us[0]:.0f} µs, pg {us[1]:.0f} µs"
    cpu += f"; connections per worker {result.spread}" if result.spread else ""
    cpu += f"; {result.db_connects} new database connections" if result.db_connects is not None else ""
    return (
        f"{result.name}: {result.rps:,.0f} req/s, p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms, {errors}{cpu}"
    )


def _with_warmup_errors(result: LoadResult, warmup: LoadResult | str) -> LoadResult:
    """The measured run, also charged with its warm-up's errors: an error in any request invalidates the bench."""
    if not isinstance(warmup, LoadResult) or not warmup.errors:
        return result
    detail = "; ".join(filter(None, [result.error_detail, f"warm-up: {warmup.error_detail}"]))
    return dataclasses.replace(result, errors=result.errors + warmup.errors, error_detail=detail)


@dataclass
class HttpRunner:
    """Runs HTTP scenarios with wrk: a warm-up, then the measured run with the CPU meter on."""

    wrk: str
    database: str
    config: BenchConfig
    scripts: Path
    say: Progress
    sessions: Callable[[], Awaitable[int]]
    ranges: IndexRanges
    redis_pid: int | None = None

    async def scenario(
        self, server: ServerProcess, name: str, scenario: str, constants: Mapping[str, LuaValue]
    ) -> LoadResult:
        cfg = self.config
        script = write_script(self.scripts, scenario, constants, cfg.wrk_threads)
        wrk = functools.partial(
            run_wrk, self.wrk, server.url, script, name=name, connections=cfg.connections, threads=cfg.wrk_threads
        )
        restarts = server.worker_restarts()
        warmup = await wrk(seconds=cfg.warmup_s, offset=self.ranges.take(cfg.warmup_s))
        for attempt in range(1, BALANCE_ATTEMPTS + 1):
            splits: list[str] = []
            sessions_before = await self.sessions()
            outcome = await wrk(
                seconds=cfg.duration_s,
                offset=self.ranges.take(cfg.duration_s),
                meter=CpuMeter(self.database, server.pgid, "child", self.redis_pid),
                check=self._balance_check(server, splits, last=attempt == BALANCE_ATTEMPTS, restarts=restarts),
            )
            if isinstance(outcome, LoadResult):
                result = dataclasses.replace(
                    _with_warmup_errors(outcome, warmup),
                    spread=splits[-1] if splits else "",
                    db_connects=await self.sessions() - sessions_before,
                )
                break
            self.say(f"{name}: the connections landed {outcome} on the workers; starting the run again")
            await asyncio.sleep(0.5)
        self.say(summary(result))
        return result

    async def interleaved(
        self, servers: Mapping[str, ServerProcess], name: str, scenario: str, constants: Mapping[str, LuaValue]
    ) -> dict[str, Series]:
        """``rounds`` rounds of the same scenario, each server in turn (ours, plain, ours, plain, ...)."""
        runs: dict[str, list[LoadResult]] = {label: [] for label in servers}
        for k in range(1, self.config.rounds + 1):
            for label, server in servers.items():
                runs[label].append(await self.scenario(server, f"{name} [{label} {k}]", scenario, constants))
        return {label: Series(tuple(results)) for label, results in runs.items()}

    def _balance_check(self, server: ServerProcess, splits: list[str], *, last: bool, restarts: int) -> BalanceCheck:
        """Accept the run when every worker got a fair share of the connections, on the last attempt, or when a
        worker is missing (uvicorn replaced one since ``restarts``, or fewer hold the socket): starting again cannot
        help then. Otherwise say how the connections landed."""

        async def check() -> str | None:
            split = await server.connection_split(self.config.connections)
            spread = "/".join(map(str, split))
            alive = await server.live_workers()
            replaced = server.worker_restarts() - restarts
            missing = replaced > 0 or (alive is not None and alive < self.config.workers)
            if replaced:
                spread += f" ({replaced} worker{'s' if replaced > 1 else ''} replaced)"
            elif missing:
                spread += f" ({alive} of {self.config.workers} workers up)"
            splits.append(spread)
            fair = self.config.connections // (2 * self.config.workers)
            if not split or min(split) >= fair or last or missing:
                return None
            return spread

        return check
