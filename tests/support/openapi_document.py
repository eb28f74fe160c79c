"""The service's OpenAPI document, built in process, and the walks over it that the document's tests share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bookings.app import create_app
from bookings.config import Settings

METHODS = {"get", "put", "post", "patch", "delete"}


def build(directory: Path, jwt_keys: str) -> dict[str, Any]:
    settings = Settings(database_url=f"sqlite:///{directory / 'bookings.db'}", jwt_keys=jwt_keys)
    document: dict[str, Any] = create_app(settings).openapi()
    return document


def operations(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``("POST /v1/bookings", operation)`` for every operation."""
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield f"{method.upper()} {path}", operation


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """A schema with its ``$ref`` chain followed to the component."""
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema
