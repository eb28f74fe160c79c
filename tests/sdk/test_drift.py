"""Drift: the SDK's hand-written models must match the server's ``/openapi.json``.

Each SDK model is compared with its component schema: the wire names (aliases), which fields are required, and
each field's type (string formats that change the Python type, enum values, arrays, nested models, nullability).
Validation constraints (lengths, ranges) are the server's business and are not compared. A field added, renamed or
retyped in the server fails here until the SDK follows; the last tests check that the comparison has teeth.

In answers the SDK may be the more tolerant side, and nothing else: it may give a default to a field the server
always sends (``tokenType``, a problem's ``requestId``: the SDK also reads problems a proxy made) and accept
``null`` where the server leaves a field out instead (a problem's ``detail``). A body the SDK sends must match.
"""

from __future__ import annotations

import copy
import typing
from typing import Any

import httpx
import pydantic
import pytest
from bookings_client import models

from bookings.events.schemas import EventOut, StreamReady
from tests.conftest import Service

# Every model the SDK sends or receives, with the OpenAPI component it mirrors.
PAIRS: list[tuple[type[pydantic.BaseModel], str]] = [
    (models.User, "UserOut"),
    (models.Provider, "ProviderOut"),
    (models.Booking, "BookingOut"),
    (models.TokenPair, "TokenPair"),
    (models.Problem, "Problem"),
    (models.FieldError, "FieldError"),
    (models.Page[models.Booking], "Page_BookingOut_"),
    (models.Page[models.Provider], "Page_ProviderOut_"),
    (models.HistoryEntry, "HistoryOut"),
    (models.Actor, "Actor"),
    (models.FieldChange, "FieldChange"),
    (models.Page[models.HistoryEntry], "Page_HistoryOut_"),
    (models.RegisterBody, "RegisterIn"),
    (models.LoginBody, "LoginIn"),
    (models.RefreshBody, "RefreshIn"),
    (models.BookingCreateBody, "BookingCreate"),
    (models.BookingPatchBody, "BookingPatch"),
    (models.CancelBody, "CancelIn"),
    (models.UserPatchBody, "UserPatch"),
    (models.CalendarFeed, "CalendarFeedOut"),
]
ENUMS: list[tuple[Any, str]] = [
    (models.Role, "Role"),
    (models.BookingStatus, "BookingStatus"),
    (models.BookingWindow, "BookingWindow"),
    (models.EventType, "EventType"),
    (models.HistoryAction, "HistoryAction"),
]
# The routes the SDK calls.
ROUTES = [
    ("post", "/v1/auth/register"),
    ("post", "/v1/auth/login"),
    ("post", "/v1/auth/refresh"),
    ("post", "/v1/auth/logout"),
    ("get", "/v1/users/me"),
    ("patch", "/v1/users/me"),
    ("post", "/v1/users/me/calendar-feed"),
    ("delete", "/v1/users/me/calendar-feed"),
    ("get", "/v1/providers"),
    ("post", "/v1/bookings"),
    ("get", "/v1/bookings"),
    ("get", "/v1/bookings/{bookingId}"),
    ("get", "/v1/bookings/{bookingId}/history"),
    ("patch", "/v1/bookings/{bookingId}"),
    ("post", "/v1/bookings/{bookingId}/cancel"),
]
FORMATS_THAT_MATTER = {"uuid", "date-time"}  # they change the Python type; "email", "uri" do not here

# The SDK's own names for components, so that a nested model compares by what it mirrors.
SDK_NAMES = {model.__name__: name for model, name in PAIRS} | {"Page_Booking_": "Page_BookingOut_"}


@pytest.fixture(scope="module")
def openapi(sdk_service: Service) -> dict[str, Any]:
    document: dict[str, Any] = httpx.get(f"{sdk_service.url}/openapi.json", timeout=10).raise_for_status().json()
    return document


def shape(schema: dict[str, Any], defs: dict[str, Any], names: dict[str, str]) -> Any:
    """A comparable summary of a JSON schema: what a client's types depend on, nothing else."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        target = defs[name]
        if "enum" in target or "const" in target:
            return shape(target, defs, names)
        return ("model", names.get(name, name))
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return shape(schema["allOf"][0], defs, names)
    if "anyOf" in schema:
        options = {shape(option, defs, names) for option in schema["anyOf"]}
        return ("anyOf", tuple(sorted(options, key=repr)))
    if "const" in schema:
        return ("enum", (schema["const"],))
    if "enum" in schema:
        return ("enum", tuple(sorted(schema["enum"])))
    kind = schema.get("type")
    if kind == "array":
        return ("array", shape(schema.get("items", {}), defs, names))
    if kind == "object":
        extra = schema.get("additionalProperties")
        return ("map", shape(extra, defs, names)) if isinstance(extra, dict) else ("object",)
    if kind == "string":
        fmt = schema.get("format")
        return ("string", fmt if fmt in FORMATS_THAT_MATTER else None)
    return (kind,)


def fields(schema: dict[str, Any], defs: dict[str, Any], names: dict[str, str]) -> dict[str, tuple[bool, Any]]:
    """``{wire name: (required, shape)}`` of an object schema."""
    required = set(schema.get("required", []))
    return {name: (name in required, shape(prop, defs, names)) for name, prop in schema.get("properties", {}).items()}


def sdk_fields(model: type[pydantic.BaseModel]) -> dict[str, tuple[bool, Any]]:
    schema = model.model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
    return fields(schema, schema.get("$defs", {}), SDK_NAMES)


def drift(model: type[pydantic.BaseModel], component: str, openapi: dict[str, Any]) -> list[str]:
    """What differs between the SDK model and the server's component, in words (empty: none)."""
    components = openapi["components"]["schemas"]
    if component not in components:
        return [f"{component}: no longer in the server's OpenAPI document"]
    server = fields(components[component], components, {})
    sdk = sdk_fields(model)
    problems = [f"{component}.{name}: in the server, missing in the SDK" for name in server.keys() - sdk.keys()]
    problems += [f"{component}.{name}: in the SDK, not in the server" for name in sdk.keys() - server.keys()]
    answer = not issubclass(model, models.ApiInput)
    for name in sorted(server.keys() & sdk.keys()):
        (server_required, server_shape), (sdk_required, sdk_shape) = server[name], sdk[name]
        if server_required != sdk_required and not (answer and server_required):
            problems.append(f"{component}.{name}: required {server_required} in the server, {sdk_required} in the SDK")
        if server_shape != sdk_shape and not (answer and sdk_shape == _or_null(server_shape)):
            problems.append(f"{component}.{name}: type {server_shape} in the server, {sdk_shape} in the SDK")
    return sorted(problems)


def _or_null(shape: Any) -> Any:
    return ("anyOf", tuple(sorted({shape, ("null",)}, key=repr)))


@pytest.mark.parametrize(("model", "component"), PAIRS, ids=[name for _, name in PAIRS])
def test_sdk_model_matches_the_server_component(
    model: type[pydantic.BaseModel], component: str, openapi: dict[str, Any]
) -> None:
    assert drift(model, component, openapi) == []


@pytest.mark.parametrize(("literal", "component"), ENUMS, ids=[name for _, name in ENUMS])
def test_sdk_enum_matches_the_server_enum(literal: Any, component: str, openapi: dict[str, Any]) -> None:
    assert sorted(typing.get_args(literal)) == sorted(openapi["components"]["schemas"][component]["enum"])


def test_the_routes_the_sdk_calls_exist(openapi: dict[str, Any]) -> None:
    missing = [(method, path) for method, path in ROUTES if method not in openapi["paths"].get(path, {})]
    assert missing == []


def test_the_list_filter_is_the_booking_window(openapi: dict[str, Any]) -> None:
    parameters = {p["name"]: p for p in openapi["paths"]["/v1/bookings"]["get"]["parameters"]}
    assert set(parameters) == {"type", "page", "limit", "cursor"}
    components = openapi["components"]["schemas"]
    assert shape(parameters["type"]["schema"], components, {}) == (
        "anyOf",
        tuple(sorted({("enum", tuple(sorted(typing.get_args(models.BookingWindow)))), ("null",)}, key=repr)),
    )


@pytest.mark.parametrize(("sdk_model", "server_model"), [(models.Event, EventOut), (models.StreamReady, StreamReady)])
def test_the_stream_messages_match_the_server_models(
    sdk_model: type[pydantic.BaseModel], server_model: type[pydantic.BaseModel]
) -> None:
    """``/ws`` is not in the OpenAPI document: compare with the server's message models directly."""
    server = server_model.model_json_schema(by_alias=True)
    sdk = sdk_model.model_json_schema(by_alias=True)
    assert set(sdk["properties"]) == set(server["properties"])
    assert set(sdk.get("required", [])) <= set(server["properties"])


def _mutated(openapi: dict[str, Any], change: typing.Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    document = copy.deepcopy(openapi)
    change(document["components"]["schemas"])
    return document


def _add_field(schemas: dict[str, Any]) -> None:
    schemas["BookingOut"]["properties"]["roomId"] = {"type": "string", "format": "uuid"}
    schemas["BookingOut"]["required"].append("roomId")


def _rename_field(schemas: dict[str, Any]) -> None:
    props = schemas["BookingOut"]["properties"]
    props["note"] = props.pop("notes")
    schemas["BookingOut"]["required"] = ["note" if r == "notes" else r for r in schemas["BookingOut"]["required"]]


def _retype_field(schemas: dict[str, Any]) -> None:
    schemas["BookingOut"]["properties"]["startTime"] = {"type": "string"}


def _make_required(schemas: dict[str, Any]) -> None:
    schemas["CancelIn"]["required"] = ["reason"]


def _make_nullable(schemas: dict[str, Any]) -> None:
    schemas["BookingOut"]["properties"]["version"] = {"anyOf": [{"type": "integer"}, {"type": "null"}]}


def _widen_enum(schemas: dict[str, Any]) -> None:
    schemas["BookingStatus"]["enum"].append("pending")


def _retype_nested(schemas: dict[str, Any]) -> None:
    schemas["Page_BookingOut_"]["properties"]["items"]["items"] = {"$ref": "#/components/schemas/UserOut"}


@pytest.mark.parametrize(
    "change", [_add_field, _rename_field, _retype_field, _make_required, _make_nullable, _widen_enum, _retype_nested]
)
def test_the_comparison_catches_a_server_change(
    change: typing.Callable[[dict[str, Any]], None], openapi: dict[str, Any]
) -> None:
    changed = _mutated(openapi, change)
    found = [problem for model, component in PAIRS for problem in drift(model, component, changed)]
    assert found, f"{change.__name__} went unnoticed"
