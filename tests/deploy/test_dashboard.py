"""The Grafana dashboard: every query parses as PromQL, and every ``bookings_*`` metric it asks for is exposed.

Each query names the Prometheus job it reads (``bookings-api``: the replicas; ``bookings-worker``: the worker's own
port). Its names are compared with that job's live ``/metrics.prom`` in the compose-like deployment, after a booking
has been made through the proxy and its reminder has run, so the counters have samples.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import promql_parser
import pytest
import yaml

from tests.deploy.conftest import Deployment
from tests.support.api import account, book, iso

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "bookings.json"
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
# Grafana's variables, replaced by what they stand for so that the PromQL parser sees a query Prometheus would get.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h", "$instance": ".*"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def dashboard() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return document


def expressions() -> list[str]:
    found = [t["expr"] for p in dashboard()["panels"] for t in p.get("targets", []) if t.get("expr")]
    assert found, "the dashboard has no queries"
    return found


def prometheus_query(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"an unknown Grafana variable in {expr}"
    return expr


def selectors(node: Any) -> set[tuple[str, str | None]]:
    """``(metric name, job)`` for every vector selector in a parsed PromQL expression (job: its ``job=`` value)."""
    if isinstance(node, promql_parser.VectorSelector):
        jobs = [m.value for m in node.matchers.matchers if m.name == "job" and m.op == promql_parser.MatchOp.Equal]
        return {(node.name, jobs[0] if jobs else None)} if node.name else set()
    found: set[tuple[str, str | None]] = set()
    for attribute in ("expr", "lhs", "rhs", "args", "param", "vector_selector"):
        child = getattr(node, attribute, None)
        for item in child if isinstance(child, list) else [child]:
            if item is not None and not isinstance(item, int | float | str):
                found |= selectors(item)
    return found


def dashboard_selectors() -> set[tuple[str, str | None]]:
    return set().union(*(selectors(promql_parser.parse(prometheus_query(e))) for e in expressions()))


def dashboard_metrics() -> set[str]:
    return {name for name, _ in dashboard_selectors()}


def scrape_jobs() -> set[str]:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    return {job["job_name"] for job in config["scrape_configs"]}


def exposed_names(exposition: str) -> set[str]:
    """Sample names, and the families declared by ``# TYPE`` (a labelled counter has none until first used)."""
    names = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            names.add(name)
            if kind == "histogram":
                names |= {name + suffix for suffix in HISTOGRAM_SUFFIXES}
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


@pytest.mark.parametrize("expr", expressions())
def test_every_query_is_valid_promql(expr: str) -> None:
    promql_parser.parse(prometheus_query(expr))


def test_the_dashboard_covers_what_operators_watch() -> None:
    wanted = {
        "bookings_http_requests_total",
        "bookings_http_request_duration_seconds_bucket",
        "bookings_created_total",
        "bookings_cancelled_total",
        "bookings_ws_clients",
        "bookings_relay_lag_seconds_bucket",
        "bookings_jobs_scheduled_total",
        "bookings_jobs_succeeded_total",
        "bookings_jobs_retried_total",
        "bookings_jobs_dead_lettered_total",
        "bookings_reminder_lateness_seconds_bucket",
        "bookings_jobs_due",
        "bookings_jobs_oldest_due_seconds",
        "bookings_jobs_dead",
    }
    assert wanted <= dashboard_metrics()
    queries = "\n".join(expressions())
    for quantile in ("0.5", "0.99"):
        assert f"histogram_quantile({quantile}, sum by (le, method, route) (rate(" in queries
    for status in ('status=~"5.."', 'status=~"4.."'):
        assert status in queries


def test_every_bookings_query_reads_a_job_prometheus_scrapes() -> None:
    jobs = {job for name, job in dashboard_selectors() if name.startswith("bookings_")}
    assert None not in jobs, "a bookings_* query does not say which job (replicas or worker) it reads"
    assert jobs == {"bookings-api", "bookings-worker"} <= scrape_jobs()


async def test_every_metric_the_dashboard_queries_is_exposed(deployment: Deployment) -> None:
    async with httpx.AsyncClient(base_url=deployment.proxy.url, timeout=30) as client:
        user = await account(client, "user")
        provider = await account(client, "provider")
        created = await book(client, user, provider)
        assert created.status_code == 201, created.text
        # Starts inside the reminder lead, so its reminder is due at once and the worker runs it.
        soon = datetime.now(UTC) + timedelta(minutes=2)
        reminded = await book(client, user, provider, (iso(soon), iso(soon + timedelta(minutes=30))))
        assert reminded.status_code == 201, reminded.text
        targets = {"bookings-api": [s.url for s in deployment.servers], "bookings-worker": [deployment.worker.url]}
        expositions = {url: (await client.get(f"{url}/metrics.prom")).text for urls in targets.values() for url in urls}
        deadline = time.monotonic() + 10
        while sample(expositions[deployment.worker.url], 'bookings_jobs_succeeded_total{kind="reminder"}') < 1:
            assert time.monotonic() < deadline, "the worker's /metrics.prom never counted the reminder it ran"
            await asyncio.sleep(0.2)
            expositions[deployment.worker.url] = (await client.get(f"{deployment.worker.url}/metrics.prom")).text
    for name, job in dashboard_selectors():
        if not name.startswith("bookings_"):
            continue
        assert job is not None
        for url in targets[job]:
            assert name in exposed_names(expositions[url]), f"{url}/metrics.prom ({job}) lacks {name}"
    # The bookings made above are counted by the replicas: the counters are real samples, not just declared.
    assert sum(sample(expositions[url], "bookings_created_total") for url in targets["bookings-api"]) >= 2
    assert sample(expositions[deployment.worker.url], "bookings_reminder_lateness_seconds_count") >= 1


def sample(exposition: str, series: str) -> float:
    """The value of one series (its name and labels, exactly as exposed), 0 if it is not there."""
    for line in exposition.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0
