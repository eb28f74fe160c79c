"""The OpenAPI document as tools read it: FastAPI's output, made plain for client generators in one pass.

Generators name types and write doc comments from what they find, so the pass removes what only adds noise and
adds what the models cannot say, for every domain at once (no model has to remember it):

- the titles pydantic and FastAPI make up from names (``Userid``, ``Starttime``, ``Page[BookingOut]``,
  ``Response Getmetrics``) go: they became every generated docstring's first line and some generated type names.
  A title someone wrote on purpose (one that is not its name title-cased) stays;
- the ``null`` values of examples come back: FastAPI drops every ``None`` from the document it builds (its last
  step encodes it with ``exclude_none``), so an example booking lost its ``cancelReason: null``, and read as if
  the field could be absent. A required field that may be ``null`` and is missing from an example was ``null``;
- ``X-Request-ID`` is listed on every response, as the middleware sends it on every response;
- ``servers`` says where the API is: where the document itself is served.

Which fields are required, and that optional request bodies are a plain ``$ref``, follow from the models
(``kit.schemas``); ``tests/unit/test_openapi_for_generators.py`` holds the document to all of it.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from typing import Any

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID: dict[str, Any] = {
    "description": "The request's id: the client's own `X-Request-ID` when it sent a valid one (1-128 of "
    "`A-Za-z0-9._:-`), else a new one. It is in the access log line and in every problem document (`requestId`).",
    "required": True,
    "schema": {"type": "string"},
}
SERVERS = [{"url": "/", "description": "Where this document is served from."}]

# Keywords whose values are schemas, lists of schemas, or maps of name to schema (JSON Schema 2020-12).
_SCHEMA = ("items", "additionalProperties", "not", "contains", "propertyNames", "if", "then", "else")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "dependentSchemas")
_FASTAPI_TITLE = re.compile(r"^(Response|Body)[ _]")  # `Response Getmetrics`, `Body_cancel_v1_bookings`


def generated_title(name: str) -> str:
    """The title pydantic gives a field or parameter called ``name`` (``userId`` -> ``Userid``)."""
    return name.title().replace("_", " ").strip()


def is_generated_title(title: str, name: str | None) -> bool:
    """Whether ``title`` was made up from ``name`` (a field, a parameter, a component) rather than written."""
    if name is None:
        return bool(_FASTAPI_TITLE.match(title))
    component_name = re.sub(r"[^a-zA-Z0-9.\-_]", "_", title)  # how FastAPI names `Page[BookingOut]`
    return title in {name, generated_title(name)} or component_name == name


def schemas(document: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str | None]]:
    """Every top-level schema of ``document`` with the name it was made for: components by their key,
    parameters and headers by theirs, request and response bodies with none."""
    for key, schema in document.get("components", {}).get("schemas", {}).items():
        yield schema, key
    for item in document.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                if "schema" in parameter:
                    yield parameter["schema"], parameter.get("name")
            for media in operation.get("requestBody", {}).get("content", {}).values():
                if "schema" in media:
                    yield media["schema"], None
            for response in operation.get("responses", {}).values():
                for media in response.get("content", {}).values():
                    if "schema" in media:
                        yield media["schema"], None
                for name, header in response.get("headers", {}).items():
                    if "schema" in header:
                        yield header["schema"], name


def subschemas(schema: dict[str, Any], name: str | None) -> Iterator[tuple[dict[str, Any], str | None]]:
    """``schema`` and every schema inside it, each with the name it was made for (a property's is its key; an
    array's items and a union's variants share their parent's). Examples and defaults are data, not schemas."""
    yield schema, name
    for keyword in _SCHEMA:
        if isinstance(inner := schema.get(keyword), dict):
            yield from subschemas(inner, name)
    for keyword in _SCHEMA_LISTS:
        for inner in schema.get(keyword, []):
            yield from subschemas(inner, name)
    for keyword in _SCHEMA_MAPS:
        for key, inner in schema.get(keyword, {}).items():
            if isinstance(inner, dict):
                yield from subschemas(inner, key)


def all_schemas(document: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str | None]]:
    for schema, name in schemas(document):
        yield from subschemas(schema, name)


def drop_generated_titles(document: dict[str, Any]) -> None:
    for schema, name in all_schemas(document):
        if isinstance(title := schema.get("title"), str) and is_generated_title(title, name):
            del schema["title"]


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while isinstance(ref := schema.get("$ref"), str) and ref.startswith("#/components/schemas/"):
        schema = document["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    return schema


def _nullable(schema: dict[str, Any]) -> bool:
    return any(variant.get("type") == "null" for variant in schema.get("anyOf", []))


def restore_nulls(document: dict[str, Any], schema: dict[str, Any], example: Any) -> None:
    """Put back, in ``example`` (an instance of ``schema``), the ``null`` of each required nullable field."""
    schema = _resolve(document, schema)
    if isinstance(example, list) and isinstance(items := schema.get("items"), dict):
        for item in example:
            restore_nulls(document, items, item)
    if not isinstance(example, dict):
        return
    for variant in schema.get("anyOf", []):
        if variant.get("type") != "null":
            restore_nulls(document, variant, example)
    properties: dict[str, Any] = schema.get("properties", {})
    for name in schema.get("required", []):
        if name not in example and _nullable(properties.get(name, {})):
            example[name] = None
    for name, value in example.items():
        if name in properties:
            restore_nulls(document, properties[name], value)


def restore_example_nulls(document: dict[str, Any]) -> None:
    for schema in document.get("components", {}).get("schemas", {}).values():
        for example in schema.get("examples", []):
            restore_nulls(document, schema, example)
    for item in document.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            bodies = [*operation.get("requestBody", {}).get("content", {}).values()]
            bodies += [
                media
                for response in operation.get("responses", {}).values()
                for media in response.get("content", {}).values()
            ]
            for media in bodies:
                examples = [named["value"] for named in media.get("examples", {}).values() if "value" in named]
                if "example" in media:
                    examples.append(media["example"])
                for example in examples:
                    restore_nulls(document, media.get("schema", {}), example)


def document_request_id(document: dict[str, Any]) -> None:
    document.setdefault("components", {}).setdefault("headers", {})[REQUEST_ID_HEADER] = REQUEST_ID
    for item in document.get("paths", {}).values():
        for operation in item.values():
            if isinstance(operation, dict):
                for response in operation.get("responses", {}).values():
                    headers = response.setdefault("headers", {})
                    headers[REQUEST_ID_HEADER] = {"$ref": f"#/components/headers/{REQUEST_ID_HEADER}"}


def for_generators(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``document`` changed as the module docstring says (a copy: FastAPI's document shares dicts with
    the routes' ``responses=``, such as one ``ETag`` header object for several routes)."""
    document = copy.deepcopy(document)
    drop_generated_titles(document)
    restore_example_nulls(document)
    document_request_id(document)
    document.setdefault("servers", SERVERS)
    return document
