"""Real-service fixtures: a ``bookings serve`` process per backend on a fresh database, and accounts on it.

Every API test that takes ``api`` runs twice, once on SQLite (embedded mode) and once on PostgreSQL.
PostgreSQL must be up (``.ci/run`` starts it); if it is not, these fixtures fail rather than skip.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bookings.admin import create_admin
from bookings.config import Settings
from tests.support.api import PASSWORD, Account, login
from tests.support.contract import undocumented_statuses
from tests.support.databases import ScratchDatabase, create_postgres, create_sqlite
from tests.support.servers import ServerProcess

# Two keys: "k2" signs, "k1" only verifies (a key being rotated out). "k0" is retired: in no ring.
RETIRED_KEY = ("k0", "retired-secret-that-is-long-enough-to-be-valid-0000")
ROTATED_KEY = ("k1", "rotated-secret-that-is-long-enough-to-be-valid-1111")
SIGNING_KEY = ("k2", "signing-secret-that-is-long-enough-to-be-valid-2222")

TEST_ENV = {
    "BOOKINGS_JWT_KEYS": f"{SIGNING_KEY[0]}:{SIGNING_KEY[1]},{ROTATED_KEY[0]}:{ROTATED_KEY[1]}",
    # argon2id at a test-friendly cost; production defaults are RFC 9106's.
    "BOOKINGS_ARGON2_TIME_COST": "1",
    "BOOKINGS_ARGON2_MEMORY_COST_KIB": "1024",
    "BOOKINGS_ARGON2_PARALLELISM": "1",
    "BOOKINGS_LOG_LEVEL": "INFO",
    # Suites make thousands of logins and bookings a minute; tests/e2e/test_rate_limits.py sets real limits.
    "BOOKINGS_RATE_LIMIT_LOGIN": "100000/minute",
    "BOOKINGS_RATE_LIMIT_LOGIN_PER_ADDRESS": "100000/minute",
    "BOOKINGS_RATE_LIMIT_REGISTER": "100000/minute",
    "BOOKINGS_RATE_LIMIT_BOOKINGS": "100000/minute",
    # Several servers of a run share one PostgreSQL (max_connections 100): at the default pools (20 and half as
    # many again, for SQLAlchemy and for asyncpg) two instances in a burst of 50 racing requests can take it all.
    "BOOKINGS_DB_POOL_SIZE": "6",
}


def pytest_configure(config: pytest.Config) -> None:
    """Where ``PYTHONDONTWRITEBYTECODE`` is set (as in many containers), every ``bookings serve`` or ``worker`` a test
    starts would compile FastAPI, SQLAlchemy and pydantic afresh: 3-4 s of CPU a process, hundreds of processes a
    run. Their bytecode is kept in a cache of the test runs instead (``PYTHONPYCACHEPREFIX``), outside the source tree
    and the virtual environment, so only the first process of a run (or none) compiles."""
    if not os.environ.get("PYTHONDONTWRITEBYTECODE") or "PYTHONPYCACHEPREFIX" in os.environ:
        return
    cache = getattr(config, "cache", None)  # None under `-p no:cacheprovider`
    directory = cache.mkdir("bytecode") if cache else Path(tempfile.gettempdir()) / f"bookings-bytecode-{os.getuid()}"
    environment = pytest.MonkeyPatch()
    environment.delenv("PYTHONDONTWRITEBYTECODE")
    environment.setenv("PYTHONPYCACHEPREFIX", str(directory))
    config.add_cleanup(environment.undo)


@dataclass
class Service:
    """A running server and the database behind it."""

    backend: str
    server: ServerProcess
    db: ScratchDatabase

    @property
    def url(self) -> str:
        return self.server.url

    def settings(self) -> Settings:
        return Settings(
            database_url=self.db.url, **{k.removeprefix("BOOKINGS_").lower(): v for k, v in TEST_ENV.items()}
        )


def start_service(backend: str, tmp: Path, **extra_env: str) -> Service:
    db = create_postgres() if backend == "postgresql" else create_sqlite(tmp)
    env = {**TEST_ENV, "BOOKINGS_DATABASE_URL": db.url, **extra_env}
    server = ServerProcess(env=env, log_path=tmp / f"server-{backend}-{secrets.token_hex(3)}.log").start()
    return Service(backend=backend, server=server, db=db)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def service(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    svc = start_service(request.param, tmp_path_factory.mktemp(request.param))
    yield svc
    openapi = httpx.get(f"{svc.url}/openapi.json", timeout=10).json()
    svc.server.stop()
    svc.db.drop()
    # Every status the whole run saw this server return must be documented for its operation.
    missing = undocumented_statuses(svc.server.log(), openapi)
    assert not missing, f"statuses returned but not in /openapi.json: {sorted(missing)}"


@pytest.fixture
async def api(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the service, with the database emptied after the test."""
    async with httpx.AsyncClient(base_url=service.url, timeout=30) as client:
        yield client
    service.db.truncate()


@pytest.fixture
async def admin(service: Service, api: httpx.AsyncClient) -> Account:
    email = f"admin-{secrets.token_hex(4)}@example.com"
    admin_id = await create_admin(service.settings(), email=email, password=PASSWORD, name="Admin")
    tokens = await login(api, email)
    return Account(str(admin_id), email, "admin", tokens["accessToken"], tokens["refreshToken"])
