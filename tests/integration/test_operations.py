"""Health, metrics and logs: what an operator relies on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import TEST_ENV, Service
from tests.support.api import PASSWORD, account, book, register
from tests.support.servers import ServerProcess, free_port


def _log_lines(service: Service) -> list[dict[str, object]]:
    return [json.loads(line) for line in service.server.log().split("\n") if line.startswith("{")]


class TestHealth:
    async def test_healthy_service_reports_its_checks(self, api: httpx.AsyncClient, service: Service) -> None:
        body = (await api.get("/health")).json()
        assert body["status"] == "ok"
        assert body["checks"]["database"]["status"] == "ok"
        assert body["checks"]["database"]["latencyMs"] >= 0
        assert body["checks"]["redis"]["status"] == "disabled"
        assert (await api.get("/health/live")).status_code == 200
        assert (await api.get("/health/ready")).status_code == 200


@pytest.fixture(scope="module")
def unreachable_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A distributed-mode server whose PostgreSQL does not answer (nothing listens on the port)."""
    env = {**TEST_ENV, "BOOKINGS_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"}
    server = ServerProcess(env=env, log_path=Path(tmp_path_factory.mktemp("no-db")) / "api.log").start()
    yield server
    server.stop()


class TestHealthWithoutDatabase:
    def test_health_and_ready_are_503_while_live_stays_200(self, unreachable_database: ServerProcess) -> None:
        health = httpx.get(f"{unreachable_database.url}/health", timeout=10)
        assert health.status_code == 503
        assert health.json()["status"] == "fail"
        assert health.json()["checks"]["database"]["status"] == "fail"
        assert httpx.get(f"{unreachable_database.url}/health/ready", timeout=10).status_code == 503
        assert httpx.get(f"{unreachable_database.url}/health/live", timeout=10).status_code == 200

    def test_requests_get_a_503_problem_not_a_500(self, unreachable_database: ServerProcess) -> None:
        login = httpx.post(
            f"{unreachable_database.url}/v1/auth/login", json={"email": "a@example.com", "password": "x"}, timeout=15
        )
        assert login.status_code == 503
        assert login.headers["content-type"] == "application/problem+json"
        assert "Traceback" not in login.text


class TestMetrics:
    async def test_prometheus_text_parses_and_counts_what_happened(self, api: httpx.AsyncClient) -> None:
        user, provider = await account(api), await account(api, "provider")
        await book(api, user, provider)
        await api.post("/v1/auth/login", json={"email": user.email, "password": "Wrong-passw0rd!"})
        text = (await api.get("/metrics.prom")).text
        families = {f.name: f for f in text_string_to_metric_families(text)}
        assert {
            "bookings_http_requests",
            "bookings_http_request_duration_seconds",
            "bookings_created",
            "bookings_cancelled",
            "bookings_logins_failed",
        } <= set(families)
        routes = {s.labels.get("route") for s in families["bookings_http_requests"].samples}
        assert "/v1/bookings" in routes
        assert not any(r and r.count("-") >= 4 for r in routes), "routes are labelled by template, not by id"
        assert families["bookings_created"].samples[0].value >= 1
        assert families["bookings_logins_failed"].samples[0].value >= 1

    async def test_json_metrics_carry_the_same_counters(self, api: httpx.AsyncClient) -> None:
        user, provider = await account(api), await account(api, "provider")
        before = (await api.get("/metrics")).json()["bookings_created_total"]
        await book(api, user, provider)
        await book(api, user, provider)
        assert (await api.get("/metrics")).json()["bookings_created_total"] == before + 2


class TestLogs:
    async def test_one_json_line_per_request_with_the_callers_request_id(
        self, api: httpx.AsyncClient, service: Service
    ) -> None:
        user = await account(api)
        response = await api.get("/v1/users/me", headers={**user.headers, "X-Request-ID": "trace-abc-123"})
        assert response.headers["x-request-id"] == "trace-abc-123"
        generated = (await api.get("/health/live")).headers["x-request-id"]
        assert len(generated) == 32
        lines = [line for line in _log_lines(service) if line.get("event") == "request"]
        mine = [line for line in lines if line["request_id"] == "trace-abc-123"]
        assert len(mine) == 1
        assert mine[0]["route"] == "/v1/users/me"
        assert mine[0]["status"] == 200
        assert mine[0]["user_id"] == user.id
        assert mine[0]["method"] == "GET"
        assert isinstance(mine[0]["duration_ms"], float)
        assert any(line["request_id"] == generated for line in lines)

    async def test_passwords_and_tokens_never_reach_the_log(self, api: httpx.AsyncClient, service: Service) -> None:
        user = await register(api)
        tokens = (await api.post("/v1/auth/login", json={"email": user["email"], "password": PASSWORD})).json()
        await api.post("/v1/auth/login", json={"email": user["email"], "password": "Typo-in-Passw0rd!"})
        await api.get("/v1/users/me", headers={"Authorization": f"Bearer {tokens['accessToken']}"})
        await api.post("/v1/auth/refresh", json={"refreshToken": tokens["refreshToken"]})
        log = service.server.log()
        assert user["email"] in log or "/v1/auth/login" in log  # the log is being written at all
        for secret in (PASSWORD, "Typo-in-Passw0rd!", tokens["accessToken"], tokens["refreshToken"]):
            assert secret not in log
