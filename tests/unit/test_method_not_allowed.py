"""A ``405`` names every method of the resource in ``Allow`` (RFC 9110 §15.5.6), not one route's.

Run in process (no server): a wrong method is refused by the router, before any dependency or database.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bookings.app import create_app
from bookings.config import Settings
from tests.conftest import TEST_ENV

PROBES = ("PUT", "DELETE", "PATCH", "POST")  # the first one a path lacks is sent


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    database = tmp_path_factory.mktemp("allow") / "bookings.db"
    return create_app(Settings(database_url=f"sqlite:///{database}", jwt_keys=TEST_ENV["BOOKINGS_JWT_KEYS"]))


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bookings.test") as client:
        yield client


def resources(app: Any) -> list[tuple[str, set[str]]]:
    """Each path of the document with the methods it documents."""
    document = app.openapi()
    return [(path, {method.upper() for method in item}) for path, item in document["paths"].items()]


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)


class TestMethodNotAllowed:
    async def test_put_on_the_bookings_collection_allows_get_and_post(self, client: httpx.AsyncClient) -> None:
        response = await client.put("/v1/bookings", json={})

        assert response.status_code == 405
        assert response.headers["allow"] == "GET, POST"
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert (problem["status"], problem["title"], problem["instance"]) == (405, "Method Not Allowed", "/v1/bookings")
        assert problem["requestId"] == response.headers["x-request-id"]

    async def test_delete_on_a_booking_allows_get_and_patch(self, client: httpx.AsyncClient) -> None:
        response = await client.delete(concrete("/v1/bookings/{bookingId}"))

        assert response.status_code == 405
        assert response.headers["allow"] == "GET, PATCH"

    async def test_every_resource_lists_all_its_methods(self, app: Any, client: httpx.AsyncClient) -> None:
        wrong = {}
        for path, methods in resources(app):
            probe = next(method for method in PROBES if method not in methods)
            response = await client.request(probe, concrete(path))
            allowed = set(response.headers.get("allow", "").split(", "))
            if response.status_code != 405 or allowed != methods:
                wrong[f"{probe} {path}"] = (response.status_code, response.headers.get("allow"))
        assert wrong == {}
