"""``/v1/users`` and ``/v1/providers``."""

from __future__ import annotations

from fastapi import APIRouter, Response

from bookings.db import ReadSession, WriteSession
from bookings.errors import problem_responses
from bookings.identity import AdminCaller, Caller
from bookings.kit.pagination import CURSOR_EXAMPLE, LINK, Page, Paging, link_next
from bookings.users import service
from bookings.users.schemas import ProviderOut, UserOut, UserPatch

router = APIRouter(prefix="/v1", tags=["users"])


@router.get("/users/me", operation_id="getMe", summary="The caller's account", responses=problem_responses(401, 503))
async def me(caller: Caller, session: ReadSession) -> UserOut:
    return await service.me(session, caller.user_id)


@router.patch(
    "/users/me",
    operation_id="updateMe",
    summary="Change the caller's name, time zone or mail preference",
    responses=problem_responses(400, 401, 413, 422, 503),
)
async def update_me(body: UserPatch, caller: Caller, session: WriteSession) -> UserOut:
    return await service.update_me(session, caller.user_id, body)


@router.get(
    "/providers",
    operation_id="listProviders",
    summary="Providers that can be booked",
    responses={200: {"headers": LINK}, **problem_responses(400, 401, 422, 503, examples=[CURSOR_EXAMPLE])},
)
async def providers(_caller: Caller, session: ReadSession, paging: Paging, response: Response) -> Page[ProviderOut]:
    page = await service.providers(session, paging)
    link_next(response, paging, page)
    return page


@router.get(
    "/users",
    operation_id="listUsers",
    summary="Every account (admins only)",
    responses={200: {"headers": LINK}, **problem_responses(400, 401, 403, 422, 503, examples=[CURSOR_EXAMPLE])},
)
async def everyone(_caller: AdminCaller, session: ReadSession, paging: Paging, response: Response) -> Page[UserOut]:
    page = await service.everyone(session, paging)
    link_next(response, paging, page)
    return page
