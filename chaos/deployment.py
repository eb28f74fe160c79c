"""The service under test: two API instances, a worker, a private Redis; each one can be killed and restarted.

Every method blocks (processes start and stop); the async run calls them through ``asyncio.to_thread``. A
restarted instance keeps its port, so that clients and listeners reconnect to the same address.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.cluster import Cluster
from tests.support.redis_server import RedisServer
from tests.support.servers import ServerProcess, WorkerProcess, free_port

from chaos.config import INSTANCES

LEADING = "relay_leading"  # what an instance logs once it holds the relay's lock


@dataclass
class Deployment:
    cluster: Cluster
    ports: dict[str, int]
    instances: dict[str, ServerProcess] = field(default_factory=dict)
    worker: WorkerProcess | None = None
    _runs: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @classmethod
    def create(cls, workdir: Path, env: dict[str, str]) -> Deployment:
        """The database (migrated) and Redis; ``start`` adds the processes."""
        return cls(Cluster.create(workdir, **env), ports={name: free_port() for name in INSTANCES})

    @property
    def db_url(self) -> str:
        return self.cluster.db.url

    @property
    def env(self) -> dict[str, str]:
        return self.cluster.env

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def start_instance(self, name: str) -> ServerProcess:
        log = self.cluster.tmp / f"api-{name}-{next(self._runs)}.log"
        server = ServerProcess(env=self.env, log_path=log, port=self.ports[name]).start()
        self.instances[name] = server
        return server

    def kill_instance(self, name: str) -> None:
        process = self.instances.pop(name).process
        assert process is not None
        process.kill()
        process.wait()

    def start_worker(self) -> None:
        log = self.cluster.tmp / f"worker-{next(self._runs)}.log"
        self.worker = WorkerProcess(env=self.env, log_path=log).start()

    def kill_worker(self) -> None:
        assert self.worker is not None
        self.worker.kill()
        self.worker = None

    def stop_worker(self) -> None:
        if self.worker is not None:
            self.worker.stop()
            self.worker = None

    def kill_redis(self) -> None:
        self.cluster.redis.stop()  # SIGKILL: nothing is saved, the restart is empty

    def start_redis(self) -> None:
        self.cluster.redis = RedisServer(self.cluster.tmp, port=self.cluster.redis.port).start()

    def leader(self) -> str | None:
        """The running instance that logged taking the relay's lock (each run of an instance has its own log)."""
        leading = [name for name, server in self.instances.items() if LEADING in server.log()]
        return leading[0] if len(leading) == 1 else None

    def wait_for_leader(self, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while (leader := self.leader()) is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no single relay leader among {sorted(self.instances)} after {timeout} s")
            time.sleep(0.1)
        return leader

    def stop(self) -> None:
        for server in self.instances.values():
            server.stop()
        self.stop_worker()
        self.cluster.redis.stop()
        self.cluster.db.drop()
