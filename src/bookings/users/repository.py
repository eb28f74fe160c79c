"""Queries on users."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bookings.kit.pagination import PageRequest, Position, keyset
from bookings.users.models import Role, User


async def get(session: AsyncSession, user_id: uuid.UUID, *, for_update: bool = False) -> User | None:
    return await session.get(User, user_id, with_for_update=for_update)


async def role_of(session: AsyncSession, user_id: uuid.UUID) -> Role | None:
    role: Role | None = await session.scalar(select(User.role).where(User.id == user_id))
    return role


async def get_by_email(session: AsyncSession, email: str) -> User | None:
    result = await session.execute(select(User).where(User.email == email))
    return result.scalar_one_or_none()


async def list_by_role(session: AsyncSession, role: Role | None, page: PageRequest) -> tuple[list[User], int | None]:
    """A page by name (then id), and the count when paging by number."""
    query = select(User)
    if role is not None:
        query = query.where(User.role == role)
    total = None
    if page.page is not None:
        total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = await session.scalars(keyset(query, page, User.name, User.id))
    return list(rows), total


def position(user: User) -> Position:
    return (user.name, user.id)
