"""Real service processes for tests: ``bookings serve`` on a free loopback port, with its log kept in a file."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

STARTUP_TIMEOUT_SECONDS = 60


def terminate(process: subprocess.Popen[bytes] | None, timeout: float = 15) -> None:
    """SIGTERM and wait; SIGKILL if it has not ended within ``timeout`` seconds. A process already gone is fine."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    env: dict[str, str]
    log_path: Path
    workers: int = 1
    cwd: Path | None = None
    base_env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        args = [
            sys.executable,
            "-m",
            "bookings",
            "serve",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                args, env={**self.base_env, **self.env}, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT
            )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health/live", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not start in time:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        terminate(self.process)

    def log(self) -> str:
        return self.log_path.read_text()


@dataclass
class WorkerProcess:
    """``bookings worker``, ready once its log says it started (and, given ``http_port``, once that port answers)."""

    env: dict[str, str]
    log_path: Path
    http_port: int | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        assert self.http_port is not None, "this worker serves no HTTP"
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> WorkerProcess:
        args = [sys.executable, "-m", "bookings", "worker"]
        if self.http_port is not None:
            args += ["--http-port", str(self.http_port)]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(args, env={**os.environ, **self.env}, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not self._ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.05)
        return self

    def _ready(self) -> bool:
        if "worker_started" not in self.log_path.read_text():
            return False
        if self.http_port is None:
            return True
        try:
            return httpx.get(f"{self.url}/health/live", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        terminate(self.process)
