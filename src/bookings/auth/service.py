"""Registration, login, refresh-token rotation and logout."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bookings.auth.keyring import AccessClaims, KeyRing
from bookings.auth.models import RefreshToken
from bookings.auth.passwords import PasswordHasher, policy_violations
from bookings.auth.schemas import LoginIn, RegisterIn, TokenPair
from bookings.config import Settings
from bookings.errors import EmailTaken, InvalidInput, NotAuthenticated
from bookings.kit.time import Clock
from bookings.ops.metrics import Metrics
from bookings.users import repository as users
from bookings.users.models import Role, User


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class AuthService:
    def __init__(
        self, settings: Settings, keys: KeyRing, hasher: PasswordHasher, metrics: Metrics, clock: Clock
    ) -> None:
        self._keys = keys
        self._hasher = hasher
        self._metrics = metrics
        self._clock = clock
        self._access_ttl = timedelta(seconds=settings.access_token_ttl_seconds)
        self._refresh_ttl = timedelta(seconds=settings.refresh_token_ttl_seconds)

    def authenticate(self, access_token: str) -> AccessClaims:
        return self._keys.verify(access_token)

    async def register(self, session: AsyncSession, data: RegisterIn, role: Role | None = None) -> User:
        if problems := policy_violations(data.password):
            raise InvalidInput("The password does not meet the policy; see `errors`.", errors=problems)
        # Hashed before the first query: on SQLite that query takes the write lock, and hashing is slow.
        password_hash = await self._hasher.hash(data.password)
        email = data.email.lower()
        if await users.get_by_email(session, email) is not None:
            raise EmailTaken("An account with this email already exists.")
        user = User(
            email=email,
            name=data.name,
            role=role or Role(data.role),
            password_hash=password_hash,
            created_at=self._clock(),
        )
        session.add(user)
        try:
            await session.flush()
        except IntegrityError as exc:  # a concurrent registration won the race for the email
            raise EmailTaken("An account with this email already exists.") from exc
        return user

    async def login(self, reads: AsyncSession, writes: AsyncSession, data: LoginIn) -> TokenPair:
        """Check the password outside any write transaction: on SQLite the slow hash would hold the write lock.

        The read session is closed before the write session starts, so a login never holds two pooled
        connections at once (under load, requests holding one while waiting for a second starve the pool).
        """
        user = await users.get_by_email(reads, data.email)  # normalized by LoginIn
        if user is not None:
            reads.expunge(user)
        await reads.close()
        if not await self._hasher.verify(user.password_hash if user else None, data.password) or user is None:
            self._metrics.logins_failed.inc()
            raise NotAuthenticated("The email or password is wrong.")
        if self._hasher.needs_rehash(user.password_hash):
            new_hash = await self._hasher.hash(data.password)
            await writes.execute(update(User).where(User.id == user.id).values(password_hash=new_hash))
        return await self._issue(writes, user, family_id=uuid.uuid4())

    async def refresh(self, session: AsyncSession, refresh_token: str) -> TokenPair:
        """Trade a refresh token for a new pair. Each works once: a replayed one revokes its whole family."""
        now = self._clock()
        digest = _digest(refresh_token)
        claimed = await session.execute(
            update(RefreshToken)
            .where(
                RefreshToken.token_hash == digest,
                RefreshToken.used_at.is_(None),
                RefreshToken.revoked_at.is_(None),
                RefreshToken.expires_at > now,
            )
            .values(used_at=now)
            .returning(RefreshToken.user_id, RefreshToken.family_id)
        )
        row = claimed.first()
        if row is None:
            await self._revoke_family_of(session, digest)
            raise NotAuthenticated("The refresh token is invalid, expired or already used.")
        user = await users.get(session, row.user_id)
        if user is None:
            raise NotAuthenticated("The account no longer exists.")
        return await self._issue(session, user, family_id=row.family_id)

    async def logout(self, session: AsyncSession, refresh_token: str) -> None:
        family = await session.scalar(
            select(RefreshToken.family_id).where(RefreshToken.token_hash == _digest(refresh_token))
        )
        if family is not None:
            await self._revoke(session, family)

    async def _revoke_family_of(self, session: AsyncSession, digest: str) -> None:
        """A known token presented again is a replay: revoke its family, and keep that even as we refuse."""
        family = await session.scalar(select(RefreshToken.family_id).where(RefreshToken.token_hash == digest))
        if family is not None:
            await self._revoke(session, family)
            # Committed now: the request fails with 401, and its rollback must not undo the revocation.
            await session.commit()

    async def _revoke(self, session: AsyncSession, family_id: uuid.UUID) -> None:
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=self._clock())
        )

    async def _issue(self, session: AsyncSession, user: User, family_id: uuid.UUID) -> TokenPair:
        now = self._clock()
        refresh_token = secrets.token_urlsafe(32)
        session.add(
            RefreshToken(
                user_id=user.id,
                family_id=family_id,
                token_hash=_digest(refresh_token),
                created_at=now,
                expires_at=now + self._refresh_ttl,
            )
        )
        await session.flush()
        return TokenPair(
            access_token=self._keys.issue(user.id, user.role, now, self._access_ttl),
            refresh_token=refresh_token,
            expires_in=int(self._access_ttl.total_seconds()),
        )
