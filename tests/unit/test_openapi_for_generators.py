"""The OpenAPI document as client generators read it (openapi-python-client, openapi-typescript and the like).

A generator turns every schema into a type: an optional body typed ``X | null`` becomes a value the generated
client cannot send, a field with a default that is always sent becomes ``| Unset`` for nothing, and a made-up
title (``Userid``) becomes every doc comment. ``tests/clients/`` runs the generators themselves on the live
document; these tests say, without them, what the document must be.
"""

from __future__ import annotations

from typing import Any

import pytest

from bookings.kit.openapi import all_schemas, is_generated_title
from tests.conftest import TEST_ENV
from tests.support.openapi_document import build, operations, resolve

# The only fields of answers the service may leave out, and why. Every other field of every answer is required.
OMITTED_WHEN_NONE = {
    "Problem": {"detail", "instance", "errors"},  # `errors` only on 422; a proxy's 503 (deploy/nginx) has no instance
    "Check": {"latencyMs", "error"},  # `latencyMs` of a check that passed, `error` of one that failed
}


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return build(tmp_path_factory.mktemp("openapi-generators"), TEST_ENV["BOOKINGS_JWT_KEYS"])


def referenced(document: dict[str, Any], node: Any, found: set[str]) -> set[str]:
    """The names of the components ``node`` refers to, directly or through other components."""
    if isinstance(node, list):
        for item in node:
            referenced(document, item, found)
    elif isinstance(node, dict):
        if (ref := node.get("$ref", "")).startswith("#/components/schemas/"):
            name = ref.rsplit("/", 1)[-1]
            if name not in found:
                found.add(name)
                referenced(document, document["components"]["schemas"][name], found)
        for key, value in node.items():
            if key not in {"example", "examples"}:
                referenced(document, value, found)
    return found


def answers(document: dict[str, Any]) -> set[str]:
    return referenced(document, [operation["responses"] for _, operation in operations(document)], set())


def is_nullable(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "null" or any(variant.get("type") == "null" for variant in schema.get("anyOf", []))


class TestRequestBodies:
    def test_no_request_body_is_a_union_with_null(self, document: dict[str, Any]) -> None:
        """An optional body is a plain ``$ref`` with ``requestBody.required`` false, never ``anyOf: [X, null]``."""
        unions = [
            f"{name} {media_type}"
            for name, operation in operations(document)
            for media_type, media in operation.get("requestBody", {}).get("content", {}).items()
            if is_nullable(resolve(document, media["schema"]))
        ]
        assert unions == []

    def test_cancel_takes_an_optional_body(self, document: dict[str, Any]) -> None:
        body = document["paths"]["/v1/bookings/{bookingId}/cancel"]["post"]["requestBody"]
        assert not body.get("required", False)
        assert body["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/CancelIn"

    def test_every_body_and_answer_is_a_named_component(self, document: dict[str, Any]) -> None:
        """An inline object schema becomes a type named after its route (`GetMetricsResponseGetmetrics`)."""
        inline = [
            f"{name} {where}"
            for name, operation in operations(document)
            for where, media in [
                *(("request", m) for m in operation.get("requestBody", {}).get("content", {}).values()),
                *((status, m) for status, r in operation["responses"].items() for m in r.get("content", {}).values()),
            ]
            if "$ref" not in media["schema"] and media["schema"].get("type") != "string"
        ]
        assert inline == []


class TestRequiredFields:
    def test_every_field_the_service_always_sends_is_required(self, document: dict[str, Any]) -> None:
        schemas = document["components"]["schemas"]
        optional = {
            name: set(schemas[name].get("properties", {})) - set(schemas[name].get("required", []))
            for name in answers(document)
        }
        assert {name: fields for name, fields in optional.items() if fields} == OMITTED_WHEN_NONE

    @pytest.mark.parametrize("field", sorted(OMITTED_WHEN_NONE["Problem"]))
    def test_a_problem_field_left_out_when_none_is_never_null_and_has_no_default(
        self, document: dict[str, Any], field: str
    ) -> None:
        """openapi-typescript types a field with a default as always present, and ``null`` is never sent."""
        schema = document["components"]["schemas"]["Problem"]["properties"][field]
        assert not is_nullable(schema)
        assert "default" not in schema

    def test_the_problem_fields_always_sent_are_required(self, document: dict[str, Any]) -> None:
        problem = document["components"]["schemas"]["Problem"]
        assert set(problem["required"]) == {"type", "title", "status", "requestId"}

    def test_examples_keep_the_nulls_of_required_fields(self, document: dict[str, Any]) -> None:
        """FastAPI drops every null from the document; an example without a required field would be invalid."""
        booking = document["components"]["schemas"]["BookingOut"]["examples"][0]
        assert booking["cancelReason"] is None
        page = document["components"]["schemas"]["Page_BookingOut_"]["examples"][0]
        assert page["items"][0]["cancelReason"] is None

    @pytest.mark.parametrize(("component", "field"), [("BookingOut", "cancelReason"), ("TokenPair", "tokenType")])
    def test_a_field_with_a_default_is_required_in_an_answer(
        self, document: dict[str, Any], component: str, field: str
    ) -> None:
        assert field in document["components"]["schemas"][component]["required"]


class TestNames:
    def test_no_schema_has_an_auto_generated_title(self, document: dict[str, Any]) -> None:
        titled = [f"{name}: {schema['title']!r}" for schema, name in all_schemas(document) if "title" in schema]
        assert titled == []

    @pytest.mark.parametrize(
        ("title", "name", "generated"),
        [
            ("Userid", "userId", True),
            ("Starttime", "startTime", True),
            ("Page[BookingOut]", "Page_BookingOut_", True),
            ("BookingOut", "BookingOut", True),
            ("Response Getmetrics", None, True),
            ("Idempotency-Key", "Idempotency-Key", True),
            ("Start of the slot", "startTime", False),
        ],
    )
    def test_a_generated_title_is_told_from_a_written_one(self, title: str, name: str | None, generated: bool) -> None:
        assert is_generated_title(title, name) is generated

    def test_the_registration_role_is_a_named_enum(self, document: dict[str, Any]) -> None:
        schemas = document["components"]["schemas"]
        role = schemas["RegisterIn"]["properties"]["role"]
        assert role["$ref"] == "#/components/schemas/RegistrationRole"
        assert schemas["RegistrationRole"]["enum"] == ["user", "provider"]

    def test_metrics_answer_a_named_snapshot(self, document: dict[str, Any]) -> None:
        ok = document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]["application/json"]
        assert ok["schema"] == {"$ref": "#/components/schemas/MetricsSnapshot"}


class TestWhatTheModelsCannotSay:
    def test_every_response_lists_x_request_id(self, document: dict[str, Any]) -> None:
        missing = [
            f"{name} {status}"
            for name, operation in operations(document)
            for status, response in operation["responses"].items()
            if "X-Request-ID" not in response.get("headers", {})
        ]
        assert missing == []
        assert document["components"]["headers"]["X-Request-ID"]["required"] is True

    def test_the_document_names_where_the_api_is(self, document: dict[str, Any]) -> None:
        assert document["servers"] == [{"url": "/", "description": "Where this document is served from."}]

    def test_cancel_says_it_is_safe_to_repeat(self, document: dict[str, Any]) -> None:
        assert "Safe to repeat" in document["paths"]["/v1/bookings/{bookingId}/cancel"]["post"]["description"]
