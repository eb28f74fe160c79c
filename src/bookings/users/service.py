"""What the people domain does: the caller's account and the directory of providers."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from bookings.errors import NotAuthenticated
from bookings.kit.pagination import Page, PageRequest, paged
from bookings.users import repository
from bookings.users.models import Role
from bookings.users.schemas import ProviderOut, UserOut, UserPatch


async def me(session: AsyncSession, user_id: uuid.UUID) -> UserOut:
    user = await repository.get(session, user_id)
    if user is None:  # the token outlived its account
        raise NotAuthenticated("The account no longer exists.")
    return UserOut.model_validate(user)


async def update_me(session: AsyncSession, user_id: uuid.UUID, patch: UserPatch) -> UserOut:
    user = await repository.get(session, user_id, for_update=True)
    if user is None:
        raise NotAuthenticated("The account no longer exists.")
    for field in patch.model_fields_set:
        setattr(user, field, getattr(patch, field))
    await session.flush()
    return UserOut.model_validate(user)


async def providers(session: AsyncSession, paging: PageRequest) -> Page[ProviderOut]:
    rows, total = await repository.list_by_role(session, Role.PROVIDER, paging)
    return paged(rows, total, paging, ProviderOut.model_validate, repository.position)


async def everyone(session: AsyncSession, paging: PageRequest) -> Page[UserOut]:
    rows, total = await repository.list_by_role(session, None, paging)
    return paged(rows, total, paging, UserOut.model_validate, repository.position)
