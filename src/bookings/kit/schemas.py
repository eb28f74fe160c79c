"""The base of every model at the edge: camelCase on the wire, unknown fields refused on input."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError


class ApiModel(BaseModel):
    """A response model: snake_case in Python, camelCase in JSON.

    Sent whole, so a field with a default (``cancelReason: null``, ``tokenType: "Bearer"``) is in every answer:
    the document marks it required (``json_schema_serialization_defaults_required``; FastAPI documents answers
    in serialization mode since the app sets ``separate_input_output_schemas``), and generated clients need not
    carry "unset" for it.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        from_attributes=True,
        json_schema_serialization_defaults_required=True,
    )


class ApiInput(BaseModel):
    """A request body: camelCase only, unknown fields are an error (a body cannot smuggle in ``userId``)."""

    model_config = ConfigDict(alias_generator=to_camel, extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        """PostgreSQL text cannot hold NUL (the insert would fail as a 500), so no backend accepts it."""
        if isinstance(value, str) and "\x00" in value:
            raise PydanticCustomError("string_contains_nul", "String should not contain the NUL character")
        return value


def omitted_when_none(schema: dict[str, Any]) -> None:
    """``json_schema_extra`` of a field that may be absent but is never ``null``: an answer's field left out when it
    is ``None`` (``exclude_none``), or a body's optional field that ``refuse_null`` guards. Its schema is the
    value's alone, with no ``default``."""
    if variants := schema.pop("anyOf", None):
        schema.update(next(variant for variant in variants if variant.get("type") != "null"))
    schema.pop("default", None)


def refuse_null(value: object) -> object:
    """A ``mode="before"`` field validator: the field may be omitted, but ``null`` is a 422 (``null_not_allowed``)."""
    if value is None:
        raise PydanticCustomError("null_not_allowed", "Omit the field rather than sending null")
    return value
