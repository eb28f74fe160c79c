"""``/v1/providers/{providerId}/availability`` and ``/slots``."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response, status

from bookings.availability.errors import AvailabilityNotFound
from bookings.availability.schemas import (
    OverrideIn,
    OverrideOut,
    ScheduleIn,
    ScheduleOut,
    SlotsOut,
    StrictDate,
)
from bookings.availability.service import NO_SCHEDULE, Availability, ProviderNotFound
from bookings.db import ReadSession, WriteSession
from bookings.errors import NotPermitted, PreconditionFailed, problem_responses
from bookings.identity import Caller
from bookings.kit import conditional
from bookings.kit.pagination import CURSOR_EXAMPLE, LINK, Page, Paging, link_next
from bookings.kit.time import TimeZoneName

router = APIRouter(prefix="/v1/providers/{providerId}", tags=["availability"])

ProviderId = Annotated[uuid.UUID, Path(alias="providerId", description="The provider's id.")]
Day = Annotated[StrictDate, Path(alias="date", description="A date in the provider's zone, `YYYY-MM-DD`.")]
ETAG = {"ETag": {"description": "The schedule's version, as a strong entity tag.", "schema": {"type": "string"}}}
NOT_THEIRS = NotPermitted("Only the provider or an admin can change a provider's availability.")
UNKNOWN = ProviderNotFound("No provider has this id.")
NONE_SET = AvailabilityNotFound(NO_SCHEDULE)


async def _availability(request: Request) -> Availability:
    service: Availability = request.app.state.availability
    return service


Availabilities = Annotated[Availability, Depends(_availability)]


@router.get(
    "/availability",
    operation_id="getAvailability",
    summary="A provider's weekly hours and slot rules",
    responses={200: {"headers": ETAG}, **problem_responses(401, 404, 422, 503, examples=[UNKNOWN, NONE_SET])},
)
async def get_schedule(
    provider_id: ProviderId, _caller: Caller, session: ReadSession, service: Availabilities, response: Response
) -> ScheduleOut:
    schedule = await service.schedule(session, provider_id)
    response.headers["ETag"] = conditional.etag(schedule.version)
    return schedule


@router.put(
    "/availability",
    operation_id="putAvailability",
    summary="Set a provider's weekly hours and slot rules (that provider or an admin)",
    description="A full replace: `201` the first time, then `200`. Existing bookings stay as they are; the new "
    "rules apply to searches and bookings from now on.",
    responses={
        200: {"headers": ETAG},
        201: {"description": "The provider's first schedule.", "headers": ETAG, "model": ScheduleOut},
        **problem_responses(
            400,
            401,
            403,
            404,
            412,
            413,
            422,
            503,
            examples=[
                NOT_THEIRS,
                UNKNOWN,
                PreconditionFailed("The schedule is at version 3, not the one `If-Match` names.", etag='"3"'),
            ],
        ),
    },
)
async def put_schedule(
    provider_id: ProviderId,
    body: ScheduleIn,
    caller: Caller,
    session: WriteSession,
    service: Availabilities,
    response: Response,
    if_match: Annotated[
        str | None, Header(alias="If-Match", description="The `ETag` the change is based on (else `412`).")
    ] = None,
) -> ScheduleOut:
    schedule, created = await service.put(session, caller, provider_id, body, if_match)
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    response.headers["ETag"] = conditional.etag(schedule.version)
    return schedule


@router.get(
    "/availability/overrides",
    operation_id="listAvailabilityOverrides",
    summary="A provider's dates with hours of their own, earliest first",
    responses={
        200: {"headers": LINK},
        **problem_responses(400, 401, 404, 422, 503, examples=[UNKNOWN, NONE_SET, CURSOR_EXAMPLE]),
    },
)
async def list_overrides(
    provider_id: ProviderId,
    _caller: Caller,
    session: ReadSession,
    service: Availabilities,
    paging: Paging,
    response: Response,
    first: Annotated[StrictDate | None, Query(alias="from", description="From this date on (`YYYY-MM-DD`).")] = None,
    last: Annotated[StrictDate | None, Query(alias="to", description="Up to this date (`YYYY-MM-DD`).")] = None,
) -> Page[OverrideOut]:
    page = await service.overrides(session, provider_id, first, last, paging)
    link_next(response, paging, page)
    return page


@router.put(
    "/availability/overrides/{date}",
    operation_id="putAvailabilityOverride",
    summary="Give one date hours of its own (`[]` closes it); that provider or an admin",
    responses={
        201: {"description": "The date had no override yet.", "model": OverrideOut},
        **problem_responses(400, 401, 403, 404, 413, 422, 503, examples=[NOT_THEIRS, UNKNOWN, NONE_SET]),
    },
)
async def put_override(
    provider_id: ProviderId,
    day: Day,
    body: OverrideIn,
    caller: Caller,
    session: WriteSession,
    service: Availabilities,
    response: Response,
) -> OverrideOut:
    override, created = await service.put_override(session, caller, provider_id, day, body)
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return override


@router.delete(
    "/availability/overrides/{date}",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="deleteAvailabilityOverride",
    summary="The date follows its weekday again",
    responses=problem_responses(401, 403, 404, 422, 503, examples=[NOT_THEIRS, UNKNOWN]),
)
async def delete_override(
    provider_id: ProviderId, day: Day, caller: Caller, session: WriteSession, service: Availabilities
) -> Response:
    await service.delete_override(session, caller, provider_id, day)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/slots",
    operation_id="searchSlots",
    summary="The provider's open slots between two dates (or two instants)",
    description="`from`/`to` are inclusive dates (`YYYY-MM-DD`) read in `timeZone` (default: the provider's), or "
    "RFC 3339 instants with an offset for the window `[from, to)`; at most 31 days. Slots are in UTC, ascending.",
    responses=problem_responses(401, 404, 422, 503, examples=[UNKNOWN, NONE_SET]),
)
async def search_slots(
    provider_id: ProviderId,
    _caller: Caller,
    session: ReadSession,
    service: Availabilities,
    raw_from: Annotated[str | None, Query(alias="from", max_length=40, examples=["2030-05-01"])] = None,
    raw_to: Annotated[str | None, Query(alias="to", max_length=40, examples=["2030-05-07"])] = None,
    time_zone: Annotated[TimeZoneName | None, Query(alias="timeZone", description="An IANA zone.")] = None,
) -> SlotsOut:
    return await service.slots(session, provider_id, raw_from, raw_to, time_zone)
