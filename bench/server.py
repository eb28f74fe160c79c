"""The servers under test on free loopback ports: the service (``uv run bookings serve --workers 2``) and the plain
baseline (``uv run uvicorn bench.plain_app:app --workers 2``); the service's accounts."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from bench.config import PROJECT_DIR
from bench.dataset import bookings_command

STARTUP_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
PASSWORD = "Bench-Pass-9!"
JWT_KID = "bench"  # BOOKINGS_JWT_KEYS=bench:<secret>
_PRIVATE_PREFIXES = ("BOOKINGS_", "PLAIN_")  # the calling shell's settings are not passed on
_PID = re.compile(r"pid=(\d+)")
_RESTARTED = re.compile(rb"Child process \[\d+\] died")
# Limits far above the load: every request is counted (that cost is measured), none refused.
UNLIMITED = {
    "BOOKINGS_RATE_LIMIT_LOGIN": "1000000/minute",
    "BOOKINGS_RATE_LIMIT_LOGIN_PER_ADDRESS": "1000000/minute",
    "BOOKINGS_RATE_LIMIT_REGISTER": "1000000/minute",
    "BOOKINGS_RATE_LIMIT_BOOKINGS": "1000000/minute",
}


async def _ss(*args: str) -> str:
    """What ``ss -H <args>`` prints (sockets, with the processes holding them for ``-p``)."""
    process = await asyncio.create_subprocess_exec(
        "ss", "-H", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    out, _ = await process.communicate()
    return out.decode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerProcess:
    """One HTTP server's process tree (``uv run ...``), in its own session so that it can be stopped as a group,
    with its output in a log file. Subclasses say what to run (``command``) and with which environment."""

    ready_path = "/health/ready"

    def __init__(self, workers: int, log_path: Path) -> None:
        self.port = free_port()
        self.workers = workers
        self.log_path = log_path
        self._env: dict[str, str] = {k: v for k, v in os.environ.items() if not k.startswith(_PRIVATE_PREFIXES)}
        self._process: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None
        self._scanned = 0  # bytes of the log read by worker_restarts
        self._restarts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pgid(self) -> int:
        assert self._process is not None
        return self._process.pid  # start_new_session: the group id is the leader's pid

    def command(self) -> list[str]:
        raise NotImplementedError

    async def start(self) -> None:
        self._log = self.log_path.open("wb")
        self._process = await asyncio.create_subprocess_exec(
            *self.command(),
            env=self._env,
            cwd=PROJECT_DIR,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        await self._wait_ready()

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        async with httpx.AsyncClient(timeout=2.0) as client:
            while time.monotonic() < deadline:
                assert self._process is not None
                if self._process.returncode is not None:
                    raise RuntimeError(f"the server exited early; see {self.log_path}")
                try:
                    if (await client.get(f"{self.url}{self.ready_path}")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
        restarts = self.worker_restarts()
        why = f" (uvicorn replaced {restarts} workers that did not answer its health ping in time)" if restarts else ""
        raise RuntimeError(f"the server was not ready within {STARTUP_TIMEOUT_S:.0f} s{why}; see {self.log_path}")

    async def connection_split(self, expected: int, timeout_s: float = 3.0) -> list[int]:
        """Established client connections per worker process, busiest first, once ``expected`` are up.

        The workers share one listening socket and each accepts whatever is queued when it wakes, so a burst of
        keep-alive connections can land mostly on one worker. Empty if ``ss`` is not installed.
        """
        if shutil.which("ss") is None:
            return []
        deadline = time.monotonic() + timeout_s
        while True:
            out = await _ss("-tnp", "state", "established", f"( sport = :{self.port} )")
            owners = [m.group(1) for line in out.splitlines() if (m := _PID.search(line))]
            counts = sorted(Counter(owners).values(), reverse=True)
            if sum(counts) >= expected or time.monotonic() > deadline:
                return counts + [0] * (self.workers - len(counts))
            await asyncio.sleep(0.1)

    async def connection_owners(self) -> dict[int, int]:
        """The worker process (pid) holding each established client connection, by the client's port; empty if
        ``ss`` is not installed."""
        if shutil.which("ss") is None:
            return {}
        out = await _ss("-tnp", "state", "established", f"( sport = :{self.port} )")
        owners: dict[int, int] = {}
        for line in out.splitlines():
            fields = line.split()
            if len(fields) >= 4 and (m := _PID.search(line)):
                owners[int(fields[3].rsplit(":", 1)[1])] = int(m.group(1))
        return owners

    async def live_workers(self) -> int | None:
        """Worker processes holding the listening socket now (its other holder is uvicorn's supervisor); None if
        ``ss`` is not installed."""
        if shutil.which("ss") is None:
            return None
        holders = set(_PID.findall(await _ss("-ltnp", f"( sport = :{self.port} )")))
        return max(0, len(holders) - 1)

    def worker_restarts(self) -> int:
        """Workers uvicorn's supervisor has replaced so far: it kills a worker that does not answer its health ping
        within 5 s (``Child process [pid] died`` in the log), including one still starting up. Reads only what the
        log gained since the last call (at INFO the service's log grows by a line per request)."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(self._scanned)
                fresh = log.read()
        except OSError:
            return self._restarts
        complete = fresh.rfind(b"\n") + 1  # a line still being written is read next time
        self._restarts += len(_RESTARTED.findall(fresh, 0, complete))
        self._scanned += complete
        return self._restarts

    async def stop(self) -> None:
        process = self._process
        if process is not None:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)  # uv forwards it; uvicorn's supervisor stops its workers
                try:
                    await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
                except TimeoutError:
                    os.killpg(self.pgid, signal.SIGKILL)
                    await process.wait()
            await _reap_group(process.pid)
        self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None


class ServiceProcess(ServerProcess):
    """``uv run bookings serve --workers N`` at the service's defaults (log level INFO: one JSON access-log line per
    request), with a signing key the bench knows and, given ``redis_url``, distributed mode with Redis. The rate
    limits are on at 1,000,000 a minute (``UNLIMITED``), or at their defaults with ``default_rate_limits``."""

    def __init__(
        self,
        database_url: str,
        workers: int,
        log_path: Path,
        *,
        redis_url: str | None = None,
        jwt_secret: str = "",
        default_rate_limits: bool = False,
    ) -> None:
        super().__init__(workers, log_path)
        self.jwt_secret = jwt_secret or secrets.token_urlsafe(36)  # 48 characters
        self._metrics_dir = tempfile.mkdtemp(prefix="bookings-bench-metrics-")
        self._env.update(
            {
                "BOOKINGS_DATABASE_URL": database_url,
                "BOOKINGS_JWT_KEYS": f"{JWT_KID}:{self.jwt_secret}",
                "BOOKINGS_ACCESS_TOKEN_TTL_SECONDS": "3600",  # outlives the whole run
                "PROMETHEUS_MULTIPROC_DIR": self._metrics_dir,
            }
        )
        if not default_rate_limits:  # bench.contention keeps the defaults and spreads its load over enough users
            self._env.update(UNLIMITED)
        if redis_url:
            self._env["BOOKINGS_REDIS_URL"] = redis_url

    def command(self) -> list[str]:
        return [*bookings_command("serve"), "--port", str(self.port), "--workers", str(self.workers)]

    async def stop(self) -> None:
        await super().stop()
        shutil.rmtree(self._metrics_dir, ignore_errors=True)


class PlainProcess(ServerProcess):
    """The plain baseline (``bench/plain_app.py``): ``uv run uvicorn bench.plain_app:app --workers N``, uvicorn's
    defaults otherwise (access log on), verifying the tokens signed with ``jwt_secret``."""

    ready_path = "/health/live"

    def __init__(self, database_url: str, workers: int, log_path: Path, *, jwt_secret: str) -> None:
        super().__init__(workers, log_path)
        self._env.update({"PLAIN_DATABASE_URL": database_url, "PLAIN_JWT_SECRET": jwt_secret, "PLAIN_JWT_KID": JWT_KID})

    def command(self) -> list[str]:
        app = ["bench.plain_app:app", "--workers", str(self.workers), "--host", "127.0.0.1", "--port", str(self.port)]
        if shutil.which("uv"):
            return ["uv", "run", "--frozen", "uvicorn", *app]
        return [sys.executable, "-m", "uvicorn", *app]


async def _reap_group(pgid: int) -> None:
    """Wait for the rest of our process group (the uvicorn workers) to go; kill what is left after a while."""
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        if time.monotonic() > deadline:
            os.killpg(pgid, signal.SIGKILL)
            return
        await asyncio.sleep(0.1)


@dataclass(frozen=True, slots=True)
class Account:
    user_id: uuid.UUID
    email: str
    token: str


async def register_and_login(base_url: str, emails: list[str]) -> list[Account]:
    """Register each account through the API (a real argon2 hash), then log it in for an access token."""
    async with httpx.AsyncClient(base_url=base_url, timeout=60.0) as client:

        async def one(email: str) -> Account:
            created = await client.post(
                "/v1/auth/register", json={"email": email, "password": PASSWORD, "name": email.split("@")[0]}
            )
            if created.status_code != 201:
                raise RuntimeError(f"register {email}: {created.status_code} {created.text}")
            login = await client.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
            if login.status_code != 200:
                raise RuntimeError(f"login {email}: {login.status_code} {login.text}")
            return Account(uuid.UUID(created.json()["id"]), email, login.json()["accessToken"])

        return list(await asyncio.gather(*(one(email) for email in emails)))


async def check_request(base_url: str, method: str, path: str, token: str, expect: int, body: object = None) -> None:
    """One request before a scenario, so that a wrong setup fails loudly instead of as 32,000 errors."""
    async with httpx.AsyncClient(base_url=base_url, timeout=10.0) as client:
        response = await client.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})
    if response.status_code != expect:
        raise RuntimeError(f"{method} {path}: expected {expect}, got {response.status_code} {response.text[:500]}")
