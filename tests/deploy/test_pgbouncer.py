"""deploy/pgbouncer, run by Debian's pgbouncer in front of two API processes and a worker, as the compose file wires it.

``pooled`` is the compose file's api-1, api-2 and worker on a fresh PostgreSQL database and a private Redis, with
``BOOKINGS_DATABASE_URL`` on PgBouncer (transaction pooling) and ``BOOKINGS_DATABASE_DIRECT_URL`` on PostgreSQL.
PgBouncer runs deploy/pgbouncer/pgbouncer.ini, the file the compose file mounts, with only its listen address and
port, its upstream host/port/dbname and its auth file and user names rewritten (the local PostgreSQL trusts
``postgres`` on 127.0.0.1), started by deploy/pgbouncer/entrypoint.sh, the compose service's entrypoint, which
writes the auth file from POSTGRES_USER / POSTGRES_PASSWORD. Clients authenticate to PgBouncer with SCRAM, as in the
compose file. PgBouncer refuses to run as root: as root, it runs as the ``postgres`` OS user.

Each process sets ``PGAPPNAME`` (libpq's application_name) to its compose name, so that PgBouncer's ``SHOW CLIENTS``
and PostgreSQL's ``pg_stat_activity`` say whose psycopg connection is whose (asyncpg's, which do not read it, have
none; all of them are request traffic, on PgBouncer).
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import psycopg
import pytest
import yaml
from psycopg.rows import dict_row

from bookings.events.coordination import RELAY_LOCK_KEY
from bookings.jobs.wakeup import CHANNEL as JOBS_CHANNEL
from tests.conftest import TEST_ENV
from tests.deploy.conftest import (
    PGBOUNCER_ENTRYPOINT,
    PGBOUNCER_INI,
    ROOT,
    pgbouncer_binary,
    read_pgbouncer_ini,
)
from tests.support.api import Account, account, book, future_slot, iso
from tests.support.cluster import Cluster
from tests.support.databases import ScratchDatabase, create_postgres
from tests.support.servers import ServerProcess, WorkerProcess, free_port, terminate
from tests.support.ws import EventClient

# The lines of pgbouncer.ini that the test rewrites (each must be there exactly once, as the compose file uses it).
DATABASE_LINE = r"^bookings\s*=\s*host=postgres port=5432 dbname=bookings\s*$"
SETTINGS = ("listen_addr", "listen_port", "auth_file", "stats_users")
DATABASE_ALIAS = "bookings"  # what clients name in their URL; PgBouncer maps it to the real database
API_REPLICAS = ("api-1", "api-2")
# A booking starting within this lead is reminded at once.
REMINDER_LEAD = timedelta(hours=2)


def render_pgbouncer_ini(*, listen_port: int, dbname: str, auth_file: Path, user: str) -> str:
    """pgbouncer.ini with loopback listening, the scratch database upstream and a local auth file and user."""
    text = PGBOUNCER_INI.read_text()
    assert len(re.findall(DATABASE_LINE, text, re.MULTILINE)) == 1, "pgbouncer.ini should map `bookings` to postgres"
    text = re.sub(DATABASE_LINE, f"{DATABASE_ALIAS} = host=127.0.0.1 port=5432 dbname={dbname}", text, flags=re.M)
    values = {
        "listen_addr": "127.0.0.1",
        "listen_port": str(listen_port),
        "auth_file": str(auth_file),
        "stats_users": user,
    }
    for key in SETTINGS:
        pattern = rf"^{key}\s*=.*$"
        assert len(re.findall(pattern, text, re.MULTILINE)) == 1, f"pgbouncer.ini should set {key} once"
        text = re.sub(pattern, f"{key} = {values[key]}", text, flags=re.MULTILINE)
    return text


@dataclass
class PgBouncerProcess:
    """deploy/pgbouncer/entrypoint.sh then pgbouncer, in the foreground, as ``postgres`` when we are root.

    Its files live in a directory of its own, made at start and removed at stop (pytest's are not readable by
    another user); its output goes to ``log_path``, opened here.
    """

    dbname: str
    log_path: Path
    user: str = "postgres"
    password: str = field(default_factory=lambda: secrets.token_hex(12))
    port: int = field(default_factory=free_port)
    workdir: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """What the service is given as BOOKINGS_DATABASE_URL."""
        return f"postgresql://{self.user}:{quote(self.password, safe='')}@127.0.0.1:{self.port}/{DATABASE_ALIAS}"

    def connect(self, dbname: str = DATABASE_ALIAS) -> psycopg.Connection[dict[str, Any]]:
        # The admin console speaks only the simple query protocol: a client-side-binding cursor uses it.
        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            dbname=dbname,
            user=self.user,
            password=self.password,
            autocommit=True,
            connect_timeout=5,
            cursor_factory=psycopg.ClientCursor,
            row_factory=dict_row,
        )

    def show(self, what: str) -> list[dict[str, Any]]:
        """``SHOW <what>`` on the admin console (the ``pgbouncer`` database; the user is in stats_users)."""
        with self.connect("pgbouncer") as conn:
            return conn.execute(f"SHOW {what}").fetchall()

    def transactions(self) -> int:
        """Transactions PgBouncer has carried to the database so far (no row yet: no client has used it)."""
        rows = [r for r in self.show("STATS") if r["database"] == DATABASE_ALIAS]
        return sum(int(r["total_xact_count"]) for r in rows)

    def start(self) -> PgBouncerProcess:
        binary = pgbouncer_binary()
        self.workdir = workdir = Path(tempfile.mkdtemp(prefix="bookings-pgbouncer-"))
        config = workdir / "pgbouncer.ini"
        auth_file = workdir / "userlist.txt"
        config.write_text(
            render_pgbouncer_ini(listen_port=self.port, dbname=self.dbname, auth_file=auth_file, user=self.user)
        )
        entrypoint = workdir / "entrypoint.sh"
        shutil.copyfile(PGBOUNCER_ENTRYPOINT, entrypoint)  # the checkout may not be readable by `postgres`
        command = ["/bin/sh", str(entrypoint), str(config)]
        if os.geteuid() == 0:  # "PgBouncer should not run as root"
            for path in (workdir, config, entrypoint):
                shutil.chown(path, user="postgres", group="postgres")
            command = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", *command]
        env = {
            "PATH": f"{Path(binary).parent}:/usr/bin:/bin",
            "POSTGRES_USER": self.user,
            "POSTGRES_PASSWORD": self.password,
        }
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=workdir)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"pgbouncer exited early:\n{self.logs()}")
            try:
                self.show("VERSION")
                return self
            except psycopg.OperationalError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"pgbouncer did not start:\n{self.logs()}")

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""

    def stop(self) -> None:
        terminate(self.process, timeout=10)
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


@dataclass
class Pooled:
    db: ScratchDatabase
    pgbouncer: PgBouncerProcess
    env: dict[str, str]
    servers: list[ServerProcess]
    worker: WorkerProcess
    xacts_at_start: int

    def direct(self) -> psycopg.Connection[dict[str, Any]]:
        return psycopg.connect(self.db.url, autocommit=True, row_factory=dict_row)

    def logs(self) -> dict[str, str]:
        found = {name: server.log() for name, server in zip(API_REPLICAS, self.servers, strict=True)}
        return {**found, "worker": self.worker.log_path.read_text(), "pgbouncer": self.pgbouncer.logs()}


@pytest.fixture(scope="module")
def pooled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pooled]:
    tmp = tmp_path_factory.mktemp("pgbouncer")
    cluster = Cluster.create(tmp, BOOKINGS_REMINDER_LEAD_SECONDS=str(int(REMINDER_LEAD.total_seconds())))
    pgbouncer: PgBouncerProcess | None = None
    worker: WorkerProcess | None = None
    try:
        pgbouncer = PgBouncerProcess(dbname=cluster.db.name, log_path=tmp / "pgbouncer.log").start()
        # The compose file's api-1, api-2 and worker environment: requests pooled, sessions direct.
        cluster.env |= {"BOOKINGS_DATABASE_URL": pgbouncer.url, "BOOKINGS_DATABASE_DIRECT_URL": cluster.db.url}
        cluster.servers += [
            ServerProcess(env={**cluster.env, "PGAPPNAME": name}, log_path=tmp / f"{name}.log") for name in API_REPLICAS
        ]
        worker = WorkerProcess(env={**cluster.env, "PGAPPNAME": "worker"}, log_path=tmp / "worker.log")
        starts: list[Callable[[], object]] = [server.start for server in cluster.servers] + [worker.start]
        with ThreadPoolExecutor(max_workers=len(starts)) as pool:  # all three start at once
            list(pool.map(lambda start: start(), starts))
        yield Pooled(
            db=cluster.db,
            pgbouncer=pgbouncer,
            env=cluster.env,
            servers=cluster.servers,
            worker=worker,
            xacts_at_start=pgbouncer.transactions(),
        )
    finally:
        if worker is not None:
            worker.stop()
        for server in cluster.servers:
            server.stop()
        if pgbouncer is not None:
            pgbouncer.stop()
        cluster.teardown()


async def eventually(check: Callable[[], Any], message: str = "", within: float = 5.0) -> Any:
    """Await ``check()`` (sync or async) until it returns something truthy, and return that."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        assert time.monotonic() < deadline, message or "the condition did not hold in time"
        await asyncio.sleep(0.05)


def clients(pooled: Pooled) -> list[httpx.AsyncClient]:
    return [httpx.AsyncClient(base_url=server.url, timeout=60) for server in pooled.servers]


async def test_reads_lists_reschedules_and_cancels_work_on_both_instances(pooled: Pooled) -> None:
    """Each statement runs more often than psycopg's prepare threshold (5) on both replicas.

    Every list asks for another page size, so that no replica can answer it from memory: each one is a query. This
    runs first, while each replica's pool holds few connections, so that each connection runs them several times.
    """
    api = clients(pooled)
    try:
        user = await account(api[0])
        provider = await account(api[1], "provider")
        created = [await book(api[i % 2], user, provider) for i in range(3)]
        assert [r.status_code for r in created] == [201, 201, 201], [r.text for r in created]
        ids = [r.json()["id"] for r in created]

        for round_ in range(8):
            for client in api:
                for booking_id in ids:
                    got = await client.get(f"/v1/bookings/{booking_id}", headers=user.headers)
                    assert got.status_code == 200, got.text
                    assert got.json()["id"] == booking_id
                for who in (user, provider):
                    listed = await client.get("/v1/bookings", params={"limit": 90 + round_}, headers=who.headers)
                    assert listed.status_code == 200, listed.text
                    assert {b["id"] for b in listed.json()["items"]} == set(ids)
                    assert listed.json()["total"] == 3

        start, end = future_slot()
        moved = await api[1].patch(
            f"/v1/bookings/{ids[0]}", json={"startTime": start, "endTime": end}, headers=user.headers
        )
        assert moved.status_code == 200, moved.text
        assert datetime.fromisoformat(moved.json()["startTime"]) == datetime.fromisoformat(start)

        cancelled = await api[1].post(f"/v1/bookings/{ids[1]}/cancel", json={"reason": "pooled"}, headers=user.headers)
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"
        again = await api[0].post(f"/v1/bookings/{ids[1]}/cancel", headers=provider.headers)
        assert again.status_code == 200, again.text
        assert again.json()["status"] == "cancelled"

        # Both replicas read the changes (a replica may serve reads from memory refreshed by the event stream).
        for client in api:

            async def changed(client: httpx.AsyncClient = client) -> bool:
                first = (await client.get(f"/v1/bookings/{ids[0]}", headers=user.headers)).json()
                second = (await client.get(f"/v1/bookings/{ids[1]}", headers=provider.headers)).json()
                return (
                    datetime.fromisoformat(first["startTime"]) == datetime.fromisoformat(start)
                    and second["status"] == "cancelled"
                )

            await eventually(changed, f"{client.base_url} does not show the reschedule and the cancellation")
        # The slot the cancelled booking held is free again.
        rebooked = await book(api[0], user, provider, (created[1].json()["startTime"], created[1].json()["endTime"]))
        assert rebooked.status_code == 201, rebooked.text
    finally:
        for client in api:
            await client.aclose()


async def test_concurrent_bookings_through_both_instances_succeed_or_conflict(pooled: Pooled) -> None:
    """48 creates at once, half of them on one slot, alternating between the replicas (more than PgBouncer's pool)."""
    api = clients(pooled)
    try:
        provider = await account(api[0], "provider")
        users = list(await asyncio.gather(*(account(api[i % 2]) for i in range(8))))
        contested = future_slot()
        requests = [(users[i % len(users)], contested) for i in range(24)]
        requests += [(users[i % len(users)], future_slot()) for i in range(24)]
        gate = asyncio.Event()

        async def create(i: int, who: Account, slot: tuple[str, str]) -> httpx.Response:
            await gate.wait()
            return await book(api[i % 2], who, provider, slot)

        tasks = [asyncio.create_task(create(i, who, slot)) for i, (who, slot) in enumerate(requests)]
        await asyncio.sleep(0.05)
        gate.set()
        responses = await asyncio.gather(*tasks)
    finally:
        for client in api:
            await client.aclose()

    unexpected = [(r.status_code, r.text[:300]) for r in responses if r.status_code not in (201, 409)]
    assert not unexpected, unexpected
    assert Counter(r.status_code for r in responses) == Counter({201: 25, 409: 23})
    assert pooled.db.count_bookings(provider.id) == 25
    with pooled.direct() as conn:
        overlapping = conn.execute(
            "SELECT count(*) AS n FROM bookings a JOIN bookings b"
            " ON a.provider_id = b.provider_id AND a.id < b.id"
            " WHERE a.status = 'confirmed' AND b.status = 'confirmed'"
            " AND a.start_time < b.end_time AND b.start_time < a.end_time"
        ).fetchone()
    assert overlapping == {"n": 0}


async def test_a_websocket_on_one_instance_receives_a_booking_made_on_the_other(pooled: Pooled) -> None:
    """The relay LISTENs and holds its advisory lock on the direct connection: events still flow across replicas."""
    first, second = pooled.servers
    async with httpx.AsyncClient(base_url=first.url, timeout=30) as client:
        user = await account(client)
        provider = await account(client, "provider")
        async with (
            EventClient(first.url, user.token) as user_events,
            EventClient(second.url, provider.token) as provider_events,
        ):
            await user_events.started()
            await provider_events.started()
            created = await book(client, user, provider)  # on the first replica
            assert created.status_code == 201, created.text
            (event,) = await provider_events.wait_for(1, within=15)  # on the second
            assert (event["event"], event["data"]["id"]) == ("booking.created", created.json()["id"])

            async with httpx.AsyncClient(base_url=second.url, timeout=30) as other:
                cancelled = await other.post(f"/v1/bookings/{created.json()['id']}/cancel", headers=provider.headers)
            assert cancelled.status_code == 200, cancelled.text
            received = await user_events.wait_for(2, within=15)
            assert [e["event"] for e in received] == ["booking.created", "booking.cancelled"]


async def test_a_reminder_fires_through_the_worker(pooled: Pooled) -> None:
    """A booking starting within the reminder lead is reminded at once: the worker's job, the relay's event."""
    async with httpx.AsyncClient(base_url=pooled.servers[0].url, timeout=30) as client:
        user = await account(client)
        provider = await account(client, "provider")
        start = datetime.now(UTC).replace(microsecond=0) + REMINDER_LEAD / 2
        async with EventClient(pooled.servers[1].url, user.token) as events:
            await events.started()
            created = await book(client, user, provider, (iso(start), iso(start + timedelta(minutes=30))))
            assert created.status_code == 201, created.text

            def reminders() -> list[dict[str, Any]]:
                return [e for e in events.events if e["event"] == "booking.reminder"]

            (reminder,) = await eventually(reminders, "no booking.reminder arrived", within=15)
    assert reminder["data"]["id"] == created.json()["id"]


async def test_pgbouncer_carried_the_request_traffic_and_the_sessions_were_direct(pooled: Pooled) -> None:
    """PgBouncer's admin console and pg_stat_activity, after the traffic of the tests above (they run first)."""
    ini = read_pgbouncer_ini()["pgbouncer"]
    pgbouncer = pooled.pgbouncer
    # The requests above (a few hundred transactions) went through PgBouncer.
    assert pgbouncer.transactions() - pooled.xacts_at_start >= 200
    (pool,) = [p for p in pgbouncer.show("POOLS") if p["database"] == DATABASE_ALIAS]
    assert pool["pool_mode"] == "transaction"
    # Every bookings process keeps pooled client connections...
    pooled_clients = [c for c in pgbouncer.show("CLIENTS") if c["database"] == DATABASE_ALIAS]
    assert {c["application_name"] for c in pooled_clients} >= {*API_REPLICAS, "worker"}
    # ...multiplexed over at most the pool's server connections.
    servers = [s for s in pgbouncer.show("SERVERS") if s["database"] == DATABASE_ALIAS]
    assert 0 < len(servers) <= int(ini["default_pool_size"]) + int(ini["reserve_pool_size"])

    def server_pids() -> set[int]:
        return {int(s["remote_pid"]) for s in pgbouncer.show("SERVERS") if s["database"] == DATABASE_ALIAS}

    # PgBouncer's server connections, as PostgreSQL backend pids (read on both sides of pg_stat_activity, in case
    # the worker's and the relays' polling made PgBouncer open one in between).
    pooled_pids = server_pids()
    with pooled.direct() as conn:
        backends = conn.execute(
            "SELECT pid, application_name, query FROM pg_stat_activity"
            " WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        ).fetchall()
        holders = conn.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND classid = 0 AND objid = %s",
            (RELAY_LOCK_KEY,),
        ).fetchall()
        pooled_locks = conn.execute(
            "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND pid = ANY(%s)", (list(pooled_pids),)
        ).fetchone()
    pooled_pids |= server_pids()
    direct = [b for b in backends if b["pid"] not in pooled_pids]
    assert pooled_pids & {b["pid"] for b in backends}, "PgBouncer's server connections are this database's backends"

    # The connections that bypass PgBouncer are the session ones, one or more per process, and nothing else:
    # LISTEN, and the relay's advisory lock (taken, or tried by the standby, and checked).
    assert {b["application_name"] for b in direct} == {*API_REPLICAS, "worker"}, direct
    session_work = re.compile(r"\bLISTEN\b|advisory|pg_locks", re.IGNORECASE)
    assert all(session_work.search(b["query"]) for b in direct), [b["query"] for b in direct]
    assert any(b["application_name"] == "worker" and b["query"] == f"LISTEN {JOBS_CHANNEL}" for b in direct), direct
    # One relay leads, and its lock is held on a direct connection of an API replica, none on a pooled one.
    (holder,) = holders
    (leader,) = [b for b in direct if b["pid"] == holder["pid"]]
    assert leader["application_name"] in API_REPLICAS
    assert pooled_locks == {"n": 0}

    # Nothing went wrong on the way: no 5xx, no lost prepared statement, no pooler error.
    for name, log in pooled.logs().items():
        assert "prepared statement" not in log, f"{name}:\n{log[-3000:]}"
        assert "Traceback" not in log, f"{name}:\n{log[-3000:]}"
        assert not re.search(r'"status":\s*5\d\d\b', log), f"{name} answered a 5xx:\n{log[-3000:]}"
    assert "pooler error" not in pgbouncer.logs(), pgbouncer.logs()


def test_bookings_migrate_goes_to_postgres_directly(tmp_path: Path) -> None:
    """`bookings migrate` with the compose file's api environment: the schema is made, PgBouncer never sees it.

    The password has a double quote and a space in it: the entrypoint's auth file escapes them.
    """
    db = create_postgres(migrate=False)
    pgbouncer = PgBouncerProcess(dbname=db.name, log_path=tmp_path / "pgbouncer.log", password='pw "x" y')
    try:
        pgbouncer.start()
        env = {
            **os.environ,
            **TEST_ENV,
            "BOOKINGS_DATABASE_URL": pgbouncer.url,
            "BOOKINGS_DATABASE_DIRECT_URL": db.url,
        }
        result = subprocess.run(
            [sys.executable, "-m", "bookings", "migrate"], env=env, capture_output=True, text=True, timeout=60, cwd=ROOT
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert pgbouncer.transactions() == 0, "the migration went through PgBouncer"
        with psycopg.connect(db.url) as conn:
            assert conn.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)

        # Not vacuous: the same database through PgBouncer, with that password, is counted.
        with pgbouncer.connect() as conn:
            assert conn.execute("SELECT count(*) AS n FROM alembic_version").fetchone() == {"n": 1}
        assert pgbouncer.transactions() >= 1
    finally:
        pgbouncer.stop()
        db.drop()


def test_the_compose_healthcheck_passes_against_pgbouncer(pooled: Pooled) -> None:
    """docker-compose.yml's pgbouncer healthcheck, run here against the same config (only the port differs)."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    kind, *command = compose["services"]["pgbouncer"]["healthcheck"]["test"]
    assert kind == "CMD"
    assert command[command.index("-p") + 1] == read_pgbouncer_ini()["pgbouncer"]["listen_port"]
    command[command.index("-p") + 1] = str(pooled.pgbouncer.port)
    assert subprocess.run(command, capture_output=True, timeout=10).returncode == 0
    # Not vacuous: where no PgBouncer listens, it fails.
    command[command.index("-p") + 1] = str(free_port())
    assert subprocess.run(command, capture_output=True, timeout=10).returncode != 0
