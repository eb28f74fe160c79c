"""``/v1/users`` and ``/v1/providers``."""

from __future__ import annotations

from fastapi import APIRouter

from bookings.auth.dependencies import AdminCaller, Caller
from bookings.db import ReadSession
from bookings.errors import problem_responses
from bookings.kit.pagination import Page, Paging
from bookings.users import service
from bookings.users.schemas import ProviderOut, UserOut

router = APIRouter(prefix="/v1", tags=["users"])


@router.get("/users/me", operation_id="getMe", summary="The caller's account", responses=problem_responses(401, 503))
async def me(caller: Caller, session: ReadSession) -> UserOut:
    return await service.me(session, caller.user_id)


@router.get(
    "/providers",
    operation_id="listProviders",
    summary="Providers that can be booked",
    responses=problem_responses(401, 422, 503),
)
async def providers(_caller: Caller, session: ReadSession, paging: Paging) -> Page[ProviderOut]:
    return await service.providers(session, paging)


@router.get(
    "/users",
    operation_id="listUsers",
    summary="Every account (admins only)",
    responses=problem_responses(401, 403, 422, 503),
)
async def everyone(_caller: AdminCaller, session: ReadSession, paging: Paging) -> Page[UserOut]:
    return await service.everyone(session, paging)
