"""What the fan-out and reminders benchmarks share: the service in distributed mode (API instances and workers
with one known signing key), a private ``redis-server``, access tokens minted with that key, CPU and memory of
named processes read from ``/proc``, and a plain-text table.

The processes reuse ``bench.server.ServiceProcess`` (its own session, stopped as a group, output to a log file);
the CPU accounting reuses ``bench.cpu`` (PostgreSQL backends of the bench's database, this process, the rest).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import jwt
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bench.config import PROJECT_DIR
from bench.cpu import CpuMeter, _processes, background_load
from bench.dataset import BenchDatabase, bookings_command
from bench.server import JWT_KID, ServiceProcess, free_port

JWT_ISSUER = "bookings"
TOKEN_TTL = timedelta(hours=1)  # outlives every run (a socket is closed when its token expires)
REDIS_START_TIMEOUT_S = 10.0
WORKER_READY_TIMEOUT_S = 60.0


def run_until_done(
    main: Coroutine[Any, Any, int], loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
) -> int:
    """``asyncio.run`` that also treats SIGTERM like Ctrl-C: the main task is cancelled, so its ``finally``
    blocks stop the processes it started and drop its database before the bench exits. ``loop_factory``: another
    event loop (uvloop) for a bench whose own process is the load generator."""

    async def guarded() -> int:
        task = asyncio.create_task(main)
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
        try:
            return await task
        except asyncio.CancelledError:
            print("bench: interrupted; cleaned up", flush=True)
            return 130
        finally:
            loop.remove_signal_handler(signal.SIGTERM)

    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            return runner.run(guarded())
    except KeyboardInterrupt:  # Ctrl-C: asyncio.run has cancelled the main task and let it clean up first
        print("bench: interrupted; cleaned up", flush=True)
        return 130


def new_jwt_secret() -> str:
    return secrets.token_urlsafe(36)  # 48 characters


def mint_token(secret: str, user_id: uuid.UUID, role: str, now: datetime | None = None) -> str:
    """An access token exactly as the service issues one (HS256, ``kid`` header, sub/role/iss/iat/exp/jti)."""
    now = now or datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "role": role,
        "iss": JWT_ISSUER,
        "iat": int(now.timestamp()),
        "exp": int((now + TOKEN_TTL).timestamp()),
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(claims, secret, algorithm="HS256", headers={"kid": JWT_KID})


@dataclass(frozen=True, slots=True)
class Deployment:
    """The settings every process of one distributed deployment shares."""

    database_url: str
    jwt_secret: str
    redis_url: str | None = None
    redis_prefix: str = field(default_factory=lambda: f"bench-{secrets.token_hex(4)}")
    reminder_lead_seconds: int = 600
    extra: tuple[tuple[str, str], ...] = ()

    def env(self) -> dict[str, str]:
        env = {
            "BOOKINGS_DATABASE_URL": self.database_url,
            "BOOKINGS_JWT_KEYS": f"{JWT_KID}:{self.jwt_secret}",
            "BOOKINGS_LOG_LEVEL": "WARNING",
            "BOOKINGS_REMINDER_LEAD_SECONDS": str(self.reminder_lead_seconds),
            "BOOKINGS_REDIS_PREFIX": self.redis_prefix,
            # Limits far above the load: every request is counted (that cost is measured), none refused.
            "BOOKINGS_RATE_LIMIT_LOGIN": "1000000/minute",
            "BOOKINGS_RATE_LIMIT_LOGIN_PER_ADDRESS": "1000000/minute",
            "BOOKINGS_RATE_LIMIT_REGISTER": "1000000/minute",
            "BOOKINGS_RATE_LIMIT_BOOKINGS": "1000000/minute",
        }
        if self.redis_url:
            env["BOOKINGS_REDIS_URL"] = self.redis_url
        env.update(dict(self.extra))
        return env


class ApiInstance(ServiceProcess):
    """``bookings serve --workers 1`` of a distributed deployment: one process, one event loop."""

    def __init__(self, deployment: Deployment, log_path: Path) -> None:
        super().__init__(deployment.database_url, 1, log_path)
        self._env.update(deployment.env())

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def rss_bytes(self) -> int:
        return group_rss(self.pgid)

    async def metrics(self) -> dict[str, Any]:
        """``GET /metrics``: the service's counters (and histogram sums and counts) as JSON."""
        async with httpx.AsyncClient(timeout=5.0) as client:
            response = await client.get(f"{self.url}/metrics")
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data


class WorkerProcess(ServiceProcess):
    """``bookings worker``: claims and runs due jobs; the API of a distributed deployment runs none."""

    def __init__(self, deployment: Deployment, log_path: Path) -> None:
        super().__init__(deployment.database_url, 1, log_path)
        self._env.update(deployment.env())

    async def start(self) -> None:
        self._log = self.log_path.open("wb")
        self._process = await asyncio.create_subprocess_exec(
            *bookings_command("worker"),
            env=self._env,
            cwd=PROJECT_DIR,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def exited(self) -> bool:
        return self._process is None or self._process.returncode is not None


async def fresh_database(say: Callable[[str], None], pg_admin_url: str) -> tuple[float, BenchDatabase]:
    """How busy the machine is before anything starts, then a new empty database (the caller drops it)."""
    idle = await background_load()
    say(f"before starting: {idle:.2f} of {os.cpu_count()} cores busy with other work")
    db = await BenchDatabase.create(pg_admin_url)
    say(f"created database {db.name}")
    return idle, db


async def start_backends(
    say: Callable[[str], None], db: BenchDatabase, redis: RedisServer, reminder_lead_seconds: int
) -> Deployment:
    """Migrate ``db``, start the private Redis, and describe the deployment the service processes will share."""
    await asyncio.to_thread(db.migrate)
    await redis.start()
    say(f"migrated; private redis-server {redis.version} on port {redis.port}")
    return Deployment(
        database_url=db.url,
        jwt_secret=new_jwt_secret(),
        redis_url=redis.url,
        reminder_lead_seconds=reminder_lead_seconds,
    )


async def wait_for_listeners(
    conn: asyncpg.Connection, channel: str, count: int, workers: Sequence[WorkerProcess] = ()
) -> None:
    """Wait until ``count`` sessions of this database LISTEN on ``channel``: each worker opens one once it idles."""
    deadline = time.monotonic() + WORKER_READY_TIMEOUT_S
    while time.monotonic() < deadline:
        found = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query = $1",
            f"LISTEN {channel}",
        )
        if found >= count:
            return
        if any(w.exited() for w in workers):
            raise RuntimeError("a worker exited early; see its log in bench/results/")
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{count} listeners on {channel} did not appear within {WORKER_READY_TIMEOUT_S:.0f} s")


class RedisServer:
    """A private ``redis-server`` on a free port: nothing persisted, nothing shared with other users of 6379."""

    def __init__(self) -> None:
        self.port = free_port()
        self._process: asyncio.subprocess.Process | None = None
        self.version = ""

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    async def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self._process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, start_new_session=True
        )
        client = aioredis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + REDIS_START_TIMEOUT_S
        try:
            while time.monotonic() < deadline:
                if self._process.returncode is not None:
                    raise RuntimeError(f"redis-server exited at once (port {self.port})")
                try:
                    info: dict[str, Any] = await client.info("server")
                    self.version = str(info.get("redis_version", ""))
                    return
                except (RedisError, OSError):
                    await asyncio.sleep(0.05)
        finally:
            await client.aclose()
        raise RuntimeError("redis-server did not answer within 10 s")

    async def stop(self) -> None:
        process = self._process
        if process is None:
            return
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 5.0)
            except TimeoutError:
                process.kill()
                await process.wait()
        self._process = None


def rss_of(pid: int) -> int:
    """Resident set size of one process, in bytes (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return 0
    return 0


def group_rss(pgid: int) -> int:
    """RSS of the processes of a process group, without ``uv`` itself (the launcher, not the service)."""
    total = 0
    for pid, proc in _processes().items():
        if proc.pgrp == pgid and proc.comm != "uv":
            total += rss_of(pid)
    return total


@dataclass(frozen=True, slots=True)
class GroupUsage:
    """Average cores busy over a measurement: named process groups, PostgreSQL, this process, the rest."""

    groups: dict[str, float]
    postgres: float
    bench: float
    other: float
    other_top: str

    def describe(self) -> str:
        parts = [f"{name} {cores:.2f}" for name, cores in self.groups.items()]
        parts += [f"pg {self.postgres:.2f}", f"bench {self.bench:.2f}", f"other {self.other:.2f}"]
        return ", ".join(parts)


class GroupMeter:
    """CPU per named group of processes (a process group id, or one pid), on top of ``bench.cpu.CpuMeter``.

    ``CpuMeter`` (with no service group and this process as the generator) gives PostgreSQL, this process and
    everything else; the named groups are then taken out of "everything else".
    """

    def __init__(self, database: str, pgids: dict[str, int], pids: dict[str, int]) -> None:
        self._base = CpuMeter(database, None, "self")
        self._pgids = pgids
        self._pids = pids
        self._before: dict[int, float] = {}
        self._started = 0.0

    def _members(self) -> dict[int, str]:
        found: dict[int, str] = {}
        groups = {pgid: name for name, pgid in self._pgids.items()}
        for pid, proc in _processes().items():
            if proc.pgrp in groups:
                found[pid] = groups[proc.pgrp]
        for name, pid in self._pids.items():
            found[pid] = name
        return found

    def start(self) -> None:
        self._base.start()
        procs = _processes()
        self._before = {pid: proc.seconds for pid, proc in procs.items()}
        self._started = time.perf_counter()

    def stop(self) -> GroupUsage:
        base = self._base.stop()
        wall = time.perf_counter() - self._started
        members = self._members()
        after = _processes()
        groups = dict.fromkeys([*self._pgids, *self._pids], 0.0)
        others: dict[str, float] = {}
        for pid, proc in after.items():
            spent = proc.seconds - self._before.get(pid, 0.0)
            if pid in members:
                groups[members[pid]] += spent / wall
            elif proc.comm != "postgres" and pid != os.getpid() and spent > 0:
                others[proc.comm] = others.get(proc.comm, 0.0) + spent / wall
        other = max(0.0, base.other - sum(groups.values()))
        top = ", ".join(f"{n} {v:.2f}" for n, v in sorted(others.items(), key=lambda kv: -kv[1])[:3] if v >= 0.01)
        return GroupUsage(groups=groups, postgres=base.postgres, bench=base.generator, other=other, other_top=top)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile of an already sorted sequence (0 when empty)."""
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, round(q * (len(sorted_values) - 1)))]


def format_table(header: Sequence[str], rows: Iterable[Sequence[str]], right: Iterable[int] = ()) -> str:
    """Columns padded to their widest cell, `` | `` between them, the listed columns right-aligned."""
    body = [list(row) for row in rows]
    widths = [max(len(line[i]) for line in [list(header), *body]) for i in range(len(header))]
    aligned = set(right)

    def fmt(cells: Sequence[str]) -> str:
        padded = zip(cells, widths, strict=True)
        return " | ".join(c.rjust(w) if i in aligned else c.ljust(w) for i, (c, w) in enumerate(padded))

    return "\n".join([fmt(header), "-+-".join("-" * w for w in widths), *(fmt(row) for row in body)])


def ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.2f}x" if baseline else "-"


async def transactions(conn: asyncpg.Connection) -> int:
    """Transactions committed or rolled back in this database so far (an autocommit statement counts as one).

    PostgreSQL's backends flush these counters about once a second, so a difference is approximate.
    """
    return int(
        await conn.fetchval(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"
        )
    )


async def sessions_opened(conn: asyncpg.Connection) -> int:
    """Sessions ever opened on the bench's database (PostgreSQL flushes the counter within about a second)."""
    return int(await conn.fetchval("SELECT sessions FROM pg_stat_database WHERE datname = current_database()"))


def busy_warning(usages: dict[str, GroupUsage | None], threshold: float = 0.2) -> str:
    """A note when processes outside the benchmark kept the cores busy during a measurement."""
    noisy = [f"{name} {u.other:.2f} ({u.other_top})" for name, u in usages.items() if u and u.other > threshold]
    if not noisy:
        return ""
    return (
        "WARNING: other processes on this machine used CPU during the measurements (cores: "
        + "; ".join(noisy)
        + "); the latencies are higher than an idle machine would give."
    )


async def postgres_version(conn: asyncpg.Connection) -> str:
    return str(await conn.fetchval("SHOW server_version"))


async def insert_people(conn: asyncpg.Connection, prefix: str, role: str, count: int, password_hash: str) -> None:
    """``count`` accounts of one role in one statement, ids ``md5('bench-<prefix>-' || n)::uuid``."""
    await conn.execute(
        f"""
        INSERT INTO users (id, email, name, role, password_hash, created_at)
        SELECT md5('bench-{prefix}-' || n)::uuid, 'bench-{prefix}-' || n || '@example.com',
               initcap('{prefix} ') || n, '{role}', $1, now()
        FROM generate_series(0, {count - 1}) AS n
        """,
        password_hash,
    )


def person_id(prefix: str, n: int) -> uuid.UUID:
    """The id ``insert_people`` gives account ``n`` (PostgreSQL's ``md5(text)::uuid``, computed here)."""
    return uuid.UUID(hashlib.md5(f"bench-{prefix}-{n}".encode()).hexdigest())
