"""The base of every model at the edge: camelCase on the wire, unknown fields refused on input."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError


class ApiModel(BaseModel):
    """A response model: snake_case in Python, camelCase in JSON."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)


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
