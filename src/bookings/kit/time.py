"""The clock, injected wherever "now" matters so that tests can set it."""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from typing import Annotated

from pydantic import AwareDatetime, BeforeValidator, Field
from pydantic_core import PydanticCustomError

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


# RFC 3339 §5.6 date-time: full-date "T" full-time, seconds required. Pydantic alone would also take a Unix
# timestamp (``1830000000`` or ``"1830000000"``), a date alone, ``HH:MM`` without seconds and ``+0200``. A value of
# this shape still goes through pydantic, which refuses a missing offset (``timezone_aware``) and impossible dates
# and times (``2030-13-01``, ``24:00``).
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)?")


def _rfc3339(value: object) -> object:
    if isinstance(value, datetime):
        return value  # from Python, not from the wire
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise PydanticCustomError(
            "rfc3339_datetime", "Input should be an RFC 3339 date-time with an offset, like 2030-05-01T09:00:00Z"
        )
    return value


Instant = Annotated[AwareDatetime, BeforeValidator(_rfc3339)]
"""A point in time as the API takes it: an RFC 3339 date-time with an offset, and nothing else."""


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _zone(value: object) -> object:
    """An IANA zone name (``Europe/Berlin``, ``UTC``); an offset such as ``+02:00`` is not one."""
    if not isinstance(value, str) or value not in _zones():
        raise PydanticCustomError("time_zone", "Input should be an IANA time zone name, like Europe/Berlin")
    return value


TimeZoneName = Annotated[str, BeforeValidator(_zone), Field(examples=["Europe/Berlin"])]
