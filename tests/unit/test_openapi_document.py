"""The OpenAPI document a client generator or a reader of ``/docs`` relies on.

Every operation is named, tagged and summarised; every request body and every response that has a body shows an
example; every example is valid against the schema it illustrates (a stale example fails here); the errors carry
their headers; the bearer scheme is declared. (That the running server returns only the statuses documented here
is checked on every test run by ``tests/support/contract.py``; schemathesis checks the bodies.)
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

from tests.conftest import TEST_ENV
from tests.support.openapi_document import build, operations, resolve

OPERATION_ID = re.compile(r"^[a-z]+[A-Za-z]*$")  # camelCase: createBooking, listBookings


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return build(tmp_path_factory.mktemp("openapi"), TEST_ENV["BOOKINGS_JWT_KEYS"])


def examples_of(document: dict[str, Any], media: dict[str, Any]) -> list[Any]:
    """What a reader is shown for a media type: its own example(s), else its schema's (or its items' schema's)."""
    if "example" in media:
        return [media["example"]]
    if "examples" in media:
        return [named["value"] for named in media["examples"].values()]
    schema = resolve(document, media.get("schema", {}))
    if variants := schema.get("anyOf"):  # an optional body: `Model | None`
        return [example for variant in variants for example in examples_of(document, {"schema": variant})]
    if "examples" in schema:
        return list(schema["examples"])
    if schema.get("type") == "array" and "examples" in (items := resolve(document, schema.get("items", {}))):
        return [items["examples"][:1]]
    return []


def media_types(operation: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(where, media type object)`` for the request body and every response with a body."""
    for name, media in operation.get("requestBody", {}).get("content", {}).items():
        yield f"request {name}", media
    for status, response in operation["responses"].items():
        for name, media in response.get("content", {}).items():
            yield f"{status} {name}", media


def closed(schema: Any) -> Any:
    """``schema`` with every object that lists its properties closed to others: an example's misspelt optional
    field is then an error, not an extra the schema tolerates."""
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    copy = {key: closed(value) for key, value in schema.items()}
    if "properties" in copy and "additionalProperties" not in copy:
        copy["additionalProperties"] = False
    return copy


def validator(document: dict[str, Any], schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    # The document's components travel with the schema, so that its `#/components/schemas/...` references resolve.
    rooted = {**schema, "components": closed(document["components"])}
    return jsonschema.Draft202012Validator(rooted, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def test_every_operation_is_named_tagged_and_summarised(document: dict[str, Any]) -> None:
    ids = []
    for name, operation in operations(document):
        operation_id = operation.get("operationId", "")
        assert OPERATION_ID.match(operation_id), f"{name}: operationId {operation_id!r}"
        assert operation.get("summary"), f"{name} has no summary"
        assert operation.get("tags"), f"{name} has no tag"
        ids.append(operation["operationId"])
    assert len(ids) == len(set(ids)), "operationIds repeat"
    assert {"createBooking", "listBookings", "getBooking", "updateBooking", "cancelBooking", "login"} <= set(ids)


def test_every_request_and_response_body_has_an_example(document: dict[str, Any]) -> None:
    missing = [
        f"{name}: {where}"
        for name, operation in operations(document)
        for where, media in media_types(operation)
        if not examples_of(document, media)
    ]
    assert not missing, "no example for:\n" + "\n".join(missing)


def test_every_example_is_valid_against_its_schema(document: dict[str, Any]) -> None:
    checked = 0
    problems = []
    for name, operation in operations(document):
        for where, media in media_types(operation):
            check = validator(document, media.get("schema", {}))
            for example in examples_of(document, media):
                checked += 1
                problems += [f"{name} {where}: {error.message}" for error in check.iter_errors(example)]
    assert not problems, "\n".join(problems)
    assert checked >= 80  # every operation's request and responses, problems included


def test_the_examples_are_those_the_service_gives(document: dict[str, Any]) -> None:
    """Spot checks that an example shows the error a route really answers with, not a generic one."""
    create = document["paths"]["/v1/bookings"]["post"]["responses"]
    conflicts = create["409"]["content"]["application/problem+json"]["examples"]
    assert {example["value"]["type"] for example in conflicts.values()} == {
        "/problems/slot-taken",
        "/problems/daily-limit-reached",
        "/problems/idempotency-key-in-use",
    }
    register = document["paths"]["/v1/auth/register"]["post"]["responses"]
    assert register["409"]["content"]["application/problem+json"]["example"]["type"] == "/problems/email-taken"
    update = document["paths"]["/v1/bookings/{bookingId}"]["patch"]["responses"]
    named = update["409"]["content"]["application/problem+json"]["examples"]
    assert {example["value"]["type"] for example in named.values()} == {
        "/problems/slot-taken",
        "/problems/daily-limit-reached",
        "/problems/conflict",
        "/problems/idempotency-key-in-use",
    }
    stale = update["412"]["content"]["application/problem+json"]["example"]
    assert stale["type"] == "/problems/precondition-failed"
    assert "ETag" in update["412"]["headers"]


def test_rate_limited_operations_document_429_and_their_headers(document: dict[str, Any]) -> None:
    limited_operations = (
        ("post", "/v1/auth/login", "200"),
        ("post", "/v1/auth/register", "201"),
        ("post", "/v1/bookings", "201"),
        ("get", "/v1/calendar-feeds/{secret}.ics", "200"),
    )
    for method, path, success in limited_operations:
        responses = document["paths"][path][method]["responses"]
        assert {"Retry-After", "RateLimit", "RateLimit-Policy"} <= set(responses["429"]["headers"]), path
        assert {"RateLimit", "RateLimit-Policy"} <= set(responses[success]["headers"]), path
    assert "Location" in document["paths"]["/v1/bookings"]["post"]["responses"]["201"]["headers"]
    limited = {name for name, operation in operations(document) if "429" in operation["responses"]}
    assert limited == {f"{method.upper()} {path}" for method, path, _ in limited_operations}


def test_the_bearer_scheme_is_declared_and_required_where_it_applies(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert [scheme["scheme"] for scheme in schemes.values()] == ["bearer"]
    for name, operation in operations(document):
        if "401" in operation["responses"] and not name.startswith("POST /v1/auth/"):
            assert operation.get("security"), f"{name} answers 401 but declares no security"


def test_the_document_is_plain_json(document: dict[str, Any]) -> None:
    """No Python-only value (a datetime, a UUID object) slipped into an example."""
    assert json.loads(json.dumps(document)) == document
