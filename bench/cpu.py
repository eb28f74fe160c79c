"""Where the two cores went during a measurement: the service, PostgreSQL, the load generator, anything else.

Read from ``/proc/<pid>/stat`` (utime + stime) before and after; the load generator is either a child process
(wrk, accounted when it is reaped) or this process itself (the asyncpg baseline). PostgreSQL counts the backends
of the bench's database and the server's own background processes; "other" is whatever else kept the machine
busy (``/proc/stat``), such as other databases' backends or unrelated processes: when it is not near zero, the
figures are lower than the machine can do.
"""

from __future__ import annotations

import asyncio
import os
import re
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

Generator = Literal["child", "self"]


# A PostgreSQL process that works for one database: a client backend or an autovacuum worker.
_PER_DATABASE = re.compile(r"\d+\.\d+\.\d+\.\d+\(\d+\)|\[local\]|autovacuum worker|parallel worker")


@dataclass(frozen=True, slots=True)
class _Proc:
    comm: str
    pgrp: int
    seconds: float
    title: str
    reaped: float  # CPU of its children that have exited (for the postmaster: backends that disconnected)


def _title(entry: Path, comm: str) -> str:
    if comm != "postgres":
        return ""
    try:
        return (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _machine_busy_seconds() -> float:
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def _processes() -> dict[int, _Proc]:
    found: dict[int, _Proc] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        # After the command: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
        seconds = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        reaped = (int(fields[13]) + int(fields[14])) / CLOCK_TICKS
        found[int(entry.name)] = _Proc(comm, int(fields[2]), seconds, _title(entry, comm), reaped)
    return found


async def background_load(seconds: float = 2.0) -> float:
    """Cores busy on the machine over ``seconds``, before the bench starts anything."""
    before = _machine_busy_seconds()
    started = time.perf_counter()
    await asyncio.sleep(seconds)
    return (_machine_busy_seconds() - before) / (time.perf_counter() - started)


def _generator_seconds(kind: Generator) -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN if kind == "child" else resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True, slots=True)
class CpuUsage:
    """Average cores busy over the measurement."""

    workers: list[float] = field(default_factory=list)  # the service's processes, busiest first
    service: float = 0.0
    postgres: float = 0.0
    generator: float = 0.0
    other: float = 0.0
    other_top: str = ""  # the busiest other processes still alive at the end, e.g. "pytest 0.41, postgres 0.12"
    redis: float | None = None  # the private redis-server, when one was named
    seconds: float = 0.0  # wall time measured: cores x seconds = CPU seconds

    def describe(self) -> str:
        if self.workers:
            split = "+".join(f"{w:.2f}" for w in self.workers[:2])
            service = f"svc {self.service:.2f} ({split})"
        else:
            service = "svc -"
        redis = f" redis {self.redis:.2f}" if self.redis is not None else ""
        return f"{service} pg {self.postgres:.2f}{redis} gen {self.generator:.2f} other {self.other:.2f}"

    def per_request_us(self, requests: int) -> tuple[float, float, float]:
        """(service, PostgreSQL, Redis) microseconds of CPU per request: core-seconds over ``requests``."""
        if not requests:
            return 0.0, 0.0, 0.0
        scale = self.seconds * 1e6 / requests
        return self.service * scale, self.postgres * scale, (self.redis or 0.0) * scale


class CpuMeter:
    def __init__(
        self, database: str, service_pgid: int | None, generator: Generator, redis_pid: int | None = None
    ) -> None:
        self._database = database
        self._pgid = service_pgid
        self._redis_pid = redis_pid
        self._generator = generator
        self._before: dict[int, _Proc] = {}
        self._generator_before = 0.0
        self._busy_before = 0.0
        self._started = 0.0

    def _is_ours(self, proc: _Proc) -> bool:
        """One of the bench database's backends, or a background process of the whole server."""
        return self._database in proc.title or not _PER_DATABASE.search(proc.title)

    def start(self) -> None:
        self._before = _processes()
        self._generator_before = _generator_seconds(self._generator)
        self._busy_before = _machine_busy_seconds()
        self._started = time.perf_counter()

    def stop(self) -> CpuUsage:
        wall = time.perf_counter() - self._started
        after = _processes()
        service: list[float] = []
        postgres = redis = 0.0
        others: dict[str, float] = {}
        for pid, proc in after.items():
            before = self._before.get(pid)
            spent = proc.seconds - (before.seconds if before and before.comm == proc.comm else 0.0)
            if self._pgid is not None and proc.pgrp == self._pgid:
                service.append(spent / wall)
            elif pid == self._redis_pid:
                redis += spent
            elif proc.comm == "postgres" and self._is_ours(proc):
                postgres += spent
                if before and proc.title.startswith("/"):  # the postmaster: backends that ended meanwhile
                    postgres += proc.reaped - before.reaped
            elif pid != os.getpid() and spent > 0:
                others[proc.comm] = others.get(proc.comm, 0.0) + spent / wall
        generator = _generator_seconds(self._generator) - self._generator_before
        busy = _machine_busy_seconds() - self._busy_before
        service.sort(reverse=True)
        other = max(0.0, busy - sum(service) * wall - postgres - redis - generator)
        return CpuUsage(
            workers=[s for s in service if s >= 0.005],
            service=sum(service),
            postgres=postgres / wall,
            generator=generator / wall,
            other=other / wall,
            other_top=", ".join(f"{name} {v:.2f}" for name, v in sorted(others.items(), key=lambda kv: -kv[1])[:3]),
            redis=redis / wall if self._redis_pid is not None else None,
            seconds=wall,
        )
