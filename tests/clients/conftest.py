"""Fixtures for the clients generated from the document, and for the TypeScript client: one SQLite server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import Service, start_service


@pytest.fixture(scope="module")
def live_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A server of the module's own (the TypeScript tests restart theirs)."""
    svc = start_service("sqlite", tmp_path_factory.mktemp("clients"))
    yield svc
    svc.server.stop()
    svc.db.drop()


@pytest.fixture(scope="module")
def live_document(live_service: Service) -> dict[str, Any]:
    """``/openapi.json`` as the running server serves it: what a generator is pointed at."""
    document: dict[str, Any] = httpx.get(f"{live_service.url}/openapi.json", timeout=10).raise_for_status().json()
    return document
