"""Several ``bookings serve`` instances of one distributed deployment: a fresh PostgreSQL database, a private Redis."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.conftest import TEST_ENV
from tests.support.databases import ScratchDatabase, create_postgres
from tests.support.redis_server import RedisServer
from tests.support.servers import ServerProcess


@dataclass
class Cluster:
    db: ScratchDatabase
    redis: RedisServer
    env: dict[str, str]
    tmp: Path
    servers: list[ServerProcess]

    @classmethod
    def create(cls, tmp: Path, **extra_env: str) -> Cluster:
        """The database and Redis; no instance yet (``start`` adds them)."""
        db = create_postgres()
        redis = RedisServer(tmp).start()
        env = {
            **TEST_ENV,
            "BOOKINGS_DATABASE_URL": db.url,
            "BOOKINGS_REDIS_URL": redis.url,
            "BOOKINGS_REDIS_PREFIX": f"test-{secrets.token_hex(4)}",
            "BOOKINGS_RELAY_POLL_SECONDS": "0.5",
            **extra_env,
        }
        return cls(db=db, redis=redis, env=env, tmp=tmp, servers=[])

    @classmethod
    def started(cls, tmp: Path, *names: str, **extra_env: str) -> Cluster:
        """``create``, then one instance per name."""
        cluster = cls.create(tmp, **extra_env)
        for name in names:
            cluster.start(name)
        return cluster

    def url(self, index: int) -> str:
        return self.servers[index].url

    def start(self, name: str, **extra: str) -> ServerProcess:
        server = ServerProcess(env={**self.env, **extra}, log_path=self.tmp / f"{name}.log").start()
        self.servers.append(server)
        return server

    def teardown(self) -> None:
        for server in self.servers:
            server.stop()
        self.redis.stop()
        self.db.drop()


@contextmanager
def instances_on_postgres(tmp: Path, count: int = 2, *, database_settings: str = "") -> Iterator[PostgresInstances]:
    """``count`` API processes on one fresh PostgreSQL database and no Redis, as behind a load balancer.

    ``database_settings``: an ``ALTER DATABASE ... SET`` clause for the database (e.g. ``deadlock_timeout = '30s'``).
    """
    db = create_postgres()
    if database_settings:
        with psycopg.connect(db.url, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{db.name}" SET {database_settings}')  # type: ignore[arg-type]
    env = {**TEST_ENV, "BOOKINGS_DATABASE_URL": db.url}
    servers = [ServerProcess(env=env, log_path=tmp / f"api-{i}.log").start() for i in range(count)]
    try:
        yield PostgresInstances([server.url for server in servers], db)
    finally:
        for server in servers:
            server.stop()
        db.drop()


@dataclass
class PostgresInstances:
    urls: list[str]
    db: ScratchDatabase
