"""Drift of the SDK's availability models and routes, by the comparison of ``tests/sdk/test_drift.py``.

Kept apart from that file's ``PAIRS`` for now (it is being edited at the same time); it can move into those lists.

``Interval`` and ``WeeklyHours`` are read and sent both, so each is held to two components: to its ``...Out`` as an
answer (where the SDK may be the more tolerant side) and to its ``...In`` as a body, exactly. Which component a
nested SDK model stands for depends on that direction (``WeeklyHours`` inside a ``Schedule`` is ``WeeklyHoursOut``,
inside a ``ScheduleBody`` it is ``WeeklyHours``), so each direction compares with its own names.
"""

from __future__ import annotations

import copy
import typing
from collections.abc import Callable
from typing import Any

import pydantic
import pytest
from bookings_client import models

from tests.sdk import test_drift
from tests.sdk.test_drift import drift, fields, openapi, sdk_fields

__all__ = ["openapi"]  # the fixture, shared with test_drift.py

Pairs = list[tuple[type[pydantic.BaseModel], str]]

# Answers: the SDK may be the more tolerant side (test_drift.drift decides how).
ANSWERS: Pairs = [
    (models.Schedule, "ScheduleOut"),
    (models.WeeklyHours, "WeeklyHoursOut"),
    (models.Interval, "IntervalOut"),
    (models.Override, "OverrideOut"),
    (models.Page[models.Override], "Page_OverrideOut_"),
    (models.Slots, "SlotsOut"),
    (models.Slot, "Slot"),
]
ANSWER_NAMES = {
    "Schedule": "ScheduleOut",
    "WeeklyHours": "WeeklyHoursOut",
    "Interval": "IntervalOut",
    "Override": "OverrideOut",
    "Slots": "SlotsOut",
    "Slot": "Slot",
}
# Bodies: exactly the server's input schema (names, required, types), whichever base class the model has.
BODIES: Pairs = [
    (models.ScheduleBody, "ScheduleIn"),
    (models.OverrideBody, "OverrideIn"),
    (models.WeeklyHours, "WeeklyHours"),
    (models.Interval, "IntervalIn"),
]
BODY_NAMES = {
    "ScheduleBody": "ScheduleIn",
    "OverrideBody": "OverrideIn",
    "WeeklyHours": "WeeklyHours",
    "Interval": "IntervalIn",
}
# The routes the SDK's availability methods call, with the parameters they send.
ROUTES: list[tuple[str, str, set[str]]] = [
    ("get", "/v1/providers/{providerId}/availability", {"providerId"}),
    ("put", "/v1/providers/{providerId}/availability", {"providerId", "If-Match"}),
    (
        "get",
        "/v1/providers/{providerId}/availability/overrides",
        {"providerId", "from", "to", "page", "limit", "cursor"},
    ),
    ("put", "/v1/providers/{providerId}/availability/overrides/{date}", {"providerId", "date"}),
    ("delete", "/v1/providers/{providerId}/availability/overrides/{date}", {"providerId", "date"}),
    ("get", "/v1/providers/{providerId}/slots", {"providerId", "from", "to", "timeZone"}),
]


def exactly(model: type[pydantic.BaseModel], component: str, document: dict[str, Any]) -> list[str]:
    """Every field whose wire name, required-ness or type differs from the component's, in words."""
    components = document["components"]["schemas"]
    if component not in components:
        return [f"{component}: no longer in the server's OpenAPI document"]
    server, sdk = fields(components[component], components, {}), sdk_fields(model)
    return [
        f"{component}.{name}: {server.get(name, 'absent')} in the server, {sdk.get(name, 'absent')} in the SDK"
        for name in sorted(server.keys() | sdk.keys())
        if server.get(name) != sdk.get(name)
    ]


def differences(document: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What differs between the SDK's availability models and ``document``, both directions."""
    base = dict(test_drift.SDK_NAMES)
    found: list[str] = []
    monkeypatch.setattr(test_drift, "SDK_NAMES", {**base, **ANSWER_NAMES})
    for model, component in ANSWERS:
        found += drift(model, component, document)
    monkeypatch.setattr(test_drift, "SDK_NAMES", {**base, **BODY_NAMES})
    for model, component in BODIES:
        found += exactly(model, component, document)
    return sorted(set(found))


@pytest.mark.parametrize(("model", "component"), ANSWERS, ids=[name for _, name in ANSWERS])
def test_an_answer_model_matches_the_server_component(
    model: type[pydantic.BaseModel], component: str, openapi: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(test_drift, "SDK_NAMES", {**test_drift.SDK_NAMES, **ANSWER_NAMES})
    assert drift(model, component, openapi) == []


@pytest.mark.parametrize(("model", "component"), BODIES, ids=[name for _, name in BODIES])
def test_a_body_matches_the_server_input_exactly(
    model: type[pydantic.BaseModel], component: str, openapi: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(test_drift, "SDK_NAMES", {**test_drift.SDK_NAMES, **BODY_NAMES})
    assert exactly(model, component, openapi) == []


def test_each_model_is_compared_with_the_component_it_names() -> None:
    compared = {(model, component) for model, component in ANSWERS + BODIES}
    named = [(model, getattr(model, "__openapi__", None)) for model, _ in compared]
    assert [(model, name) for model, name in named if name is not None and (model, name) not in compared] == []


def test_the_weekdays_are_the_servers(openapi: dict[str, Any]) -> None:
    components = openapi["components"]["schemas"]
    weekdays = typing.get_args(models.Weekday)
    assert list(weekdays) == list(models.WEEKDAYS)
    assert (
        set(weekdays) == set(components["WeeklyHours"]["properties"]) == set(components["WeeklyHoursOut"]["properties"])
    )


@pytest.mark.parametrize(("method", "path", "parameters"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_the_routes_the_sdk_calls_exist_with_their_parameters(
    method: str, path: str, parameters: set[str], openapi: dict[str, Any]
) -> None:
    operation = openapi["paths"].get(path, {}).get(method)
    assert operation is not None, f"{method.upper()} {path} is not in the server's document"
    assert {p["name"] for p in operation.get("parameters", [])} == parameters


def _add_required_field(schemas: dict[str, Any]) -> None:
    schemas["SlotsOut"]["properties"]["capacity"] = {"type": "integer"}
    schemas["SlotsOut"]["required"].append("capacity")


def _rename_input_field(schemas: dict[str, Any]) -> None:
    props = schemas["ScheduleIn"]["properties"]
    props["slotMinutes"] = props.pop("slotLengthMinutes")


def _retype_time(schemas: dict[str, Any]) -> None:
    schemas["Slot"]["properties"]["startTime"] = {"type": "string"}


def _require_the_note(schemas: dict[str, Any]) -> None:
    schemas["OverrideIn"]["required"] = ["intervals", "note"]


def _add_to_the_input_interval(schemas: dict[str, Any]) -> None:
    schemas["IntervalIn"]["properties"]["label"] = {"type": "string"}
    schemas["IntervalIn"]["required"].append("label")


def _require_a_weekday_in_the_input(schemas: dict[str, Any]) -> None:
    schemas["WeeklyHours"]["required"] = ["monday"]


def _nest_the_wrong_model(schemas: dict[str, Any]) -> None:
    schemas["ScheduleOut"]["properties"]["weeklyHours"] = {"$ref": "#/components/schemas/WeeklyHours"}


def _date_to_instant(schemas: dict[str, Any]) -> None:
    schemas["OverrideOut"]["properties"]["date"] = {"type": "string", "format": "date-time"}


@pytest.mark.parametrize(
    "change",
    [
        _add_required_field,
        _rename_input_field,
        _retype_time,
        _require_the_note,
        _add_to_the_input_interval,
        _require_a_weekday_in_the_input,
        _nest_the_wrong_model,
        _date_to_instant,
    ],
)
def test_the_comparison_catches_a_server_change(
    change: Callable[[dict[str, Any]], None], openapi: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert differences(openapi, monkeypatch) == []
    changed = copy.deepcopy(openapi)
    change(changed["components"]["schemas"])
    assert differences(changed, monkeypatch), f"{change.__name__} went unnoticed"
