"""The deployment's own parts run for real where no Docker engine is needed.

``deployment`` is two ``bookings serve`` processes on one fresh PostgreSQL database and a private Redis (the compose
file's api-1 and api-2) and a ``bookings worker`` serving its metrics on a port of its own (the compose file's
worker), with Debian's nginx in front of the replicas running deploy/nginx/nginx.conf, the file the compose file
mounts, with only its upstream addresses and listen port rewritten.

PgBouncer (deploy/pgbouncer, run by tests/deploy/test_pgbouncer.py) has its helpers here too: the Debian binary, and
the committed pgbouncer.ini read as its sections.
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.support.cluster import Cluster
from tests.support.databases import ScratchDatabase
from tests.support.redis_server import RedisServer
from tests.support.servers import ServerProcess, WorkerProcess, free_port, terminate

ROOT = Path(__file__).resolve().parents[2]
NGINX_CONF = ROOT / "deploy" / "nginx" / "nginx.conf"
PGBOUNCER_DIR = ROOT / "deploy" / "pgbouncer"
PGBOUNCER_INI = PGBOUNCER_DIR / "pgbouncer.ini"
PGBOUNCER_ENTRYPOINT = PGBOUNCER_DIR / "entrypoint.sh"
# The compose names of the replicas, as they appear in nginx.conf's upstream block.
UPSTREAMS = ("api-1:8000", "api-2:8000")
LISTEN = "listen 80;"


def nginx_binary() -> str:
    """Debian's nginx (``.ci/run`` installs it). Missing is a failure, never a skip."""
    found = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)
    if found is None:
        pytest.fail("nginx is not installed: `apt-get install -y nginx` (.ci/run does it)")
    return found


def pgbouncer_binary() -> str:
    """Debian's pgbouncer (``.ci/run`` installs it). Missing is a failure, never a skip."""
    candidates = (shutil.which("pgbouncer"), "/usr/sbin/pgbouncer")
    found = next((p for p in candidates if p and os.access(p, os.X_OK)), None)
    if found is None:
        pytest.fail("pgbouncer is not installed: `apt-get install -y pgbouncer` (.ci/run does it)")
    return found


def read_pgbouncer_ini(text: str | None = None) -> dict[str, dict[str, str]]:
    """deploy/pgbouncer/pgbouncer.ini (or ``text``) as {section: {key: value}}, as PgBouncer reads it."""
    parser = configparser.ConfigParser(comment_prefixes=(";", "#"), inline_comment_prefixes=None, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(PGBOUNCER_INI.read_text() if text is None else text)
    return {name: dict(parser[name]) for name in parser.sections()}


def render_nginx_conf(upstream_ports: list[int], listen_port: int) -> str:
    """deploy/nginx/nginx.conf with ``api-N:8000`` -> ``127.0.0.1:<port>`` and ``listen 80`` -> a loopback port."""
    text = NGINX_CONF.read_text()
    assert text.count(LISTEN) == 1, "nginx.conf should have exactly one `listen 80;`"
    for name, port in zip(UPSTREAMS, upstream_ports, strict=True):
        pattern = rf"(\bserver\s+){re.escape(name)}(\s)"
        assert len(re.findall(pattern, text)) == 1, f"nginx.conf should name the upstream {name} once"
        text = re.sub(pattern, rf"\g<1>127.0.0.1:{port}\g<2>", text)
    return text.replace(LISTEN, f"listen 127.0.0.1:{listen_port};")


@dataclass
class NginxProcess:
    """nginx in the foreground as the current user, every runtime path under ``workdir``."""

    conf_text: str
    workdir: Path
    port: int
    process: subprocess.Popen[bytes] | None = None
    stdout_path: Path = field(init=False)
    error_log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.stdout_path = self.workdir / "nginx.out"
        self.error_log = self.workdir / "error.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> NginxProcess:
        conf = self.workdir / "nginx.conf"
        conf.write_text(self.conf_text)
        args = [nginx_binary(), "-p", f"{self.workdir}/", "-c", str(conf), "-e", str(self.error_log)]
        globals_ = f"daemon off; pid {self.workdir / 'nginx.pid'};"
        check = subprocess.run([*args, "-g", globals_, "-t"], capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, f"nginx -t refused the config:\n{check.stderr}"
        with self.stdout_path.open("ab") as out:
            self.process = subprocess.Popen([*args, "-g", globals_], stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited early:\n{self.logs()}")
            try:
                if httpx.get(f"{self.url}/nginx-health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nginx did not start:\n{self.logs()}")

    def logs(self) -> str:
        parts = [p.read_text(errors="replace") for p in (self.stdout_path, self.error_log) if p.exists()]
        return "\n".join(parts)[-3000:]

    def stop(self) -> None:
        terminate(self.process, timeout=10)


@dataclass
class Deployment:
    db: ScratchDatabase
    redis: RedisServer
    env: dict[str, str]
    servers: list[ServerProcess]
    worker: WorkerProcess
    proxy: NginxProcess


@pytest.fixture(scope="package")  # not the session's: its four processes would idle on through every later test
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    tmp = tmp_path_factory.mktemp("deployment")
    # Low enough that tests/deploy/test_nginx_proxy.py can see a spoofed X-Forwarded-For change nothing.
    cluster = Cluster.create(tmp, BOOKINGS_RATE_LIMIT_LOGIN="3/minute")
    worker = WorkerProcess(env=cluster.env, log_path=tmp / "worker.log", http_port=free_port())
    proxy: NginxProcess | None = None
    try:
        cluster.servers += [ServerProcess(env=cluster.env, log_path=tmp / f"{name}.log") for name in ("api-1", "api-2")]
        with ThreadPoolExecutor(max_workers=len(cluster.servers)) as pool:  # both start at once
            list(pool.map(ServerProcess.start, cluster.servers))
        worker.start()
        port = free_port()
        conf = render_nginx_conf([s.port for s in cluster.servers], port)
        proxy = NginxProcess(conf, tmp / "nginx", port).start()
        yield Deployment(
            db=cluster.db, redis=cluster.redis, env=cluster.env, servers=cluster.servers, worker=worker, proxy=proxy
        )
    finally:
        if proxy is not None:
            proxy.stop()
        worker.stop()
        cluster.teardown()
