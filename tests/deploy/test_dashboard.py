"""The Grafana dashboard: every query parses as PromQL, and every ``bookings_*`` metric it asks for is exposed.

The names are compared with a live replica's ``/metrics.prom`` (the compose deployment's API, PostgreSQL and Redis)
after a booking has been made through the proxy, so the booking counters have samples.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import promql_parser
import pytest

from tests.deploy.conftest import Deployment
from tests.support.api import account, book

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "bookings.json"
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


def metric_names(node: Any) -> set[str]:
    """The metric names of every vector selector in a parsed PromQL expression."""
    if isinstance(node, promql_parser.VectorSelector):
        return {node.name} if node.name else set()
    names: set[str] = set()
    for attribute in ("expr", "lhs", "rhs", "args", "param", "vector_selector"):
        child = getattr(node, attribute, None)
        for item in child if isinstance(child, list) else [child]:
            if item is not None and not isinstance(item, int | float | str):
                names |= metric_names(item)
    return names


def dashboard_metrics() -> set[str]:
    return set().union(*(metric_names(promql_parser.parse(prometheus_query(e))) for e in expressions()))


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
    }
    assert wanted <= dashboard_metrics()
    queries = "\n".join(expressions())
    for quantile in ("0.5", "0.99"):
        assert f"histogram_quantile({quantile}, sum by (le, method, route) (rate(" in queries
    for status in ('status=~"5.."', 'status=~"4.."'):
        assert status in queries


async def test_every_metric_the_dashboard_queries_is_exposed(deployment: Deployment) -> None:
    async with httpx.AsyncClient(base_url=deployment.proxy.url, timeout=30) as client:
        user = await account(client, "user")
        provider = await account(client, "provider")
        created = await book(client, user, provider)
        assert created.status_code == 201, created.text
        expositions = {s.url: (await client.get(f"{s.url}/metrics.prom")).text for s in deployment.servers}
    queried = {name for name in dashboard_metrics() if name.startswith("bookings_")}
    for url, exposition in expositions.items():
        missing = queried - exposed_names(exposition)
        assert not missing, f"{url}/metrics.prom lacks {sorted(missing)}"
    # The booking made above is counted by one of the replicas: the counters are real samples, not just declared.
    created_total = sum(
        float(line.split()[1])
        for exposition in expositions.values()
        for line in exposition.splitlines()
        if line.startswith("bookings_created_total ")
    )
    assert created_total >= 1
