"""Making admins, which only the CLI may do."""

from __future__ import annotations

import uuid

from pydantic import ValidationError as PydanticValidationError

from bookings.auth.keyring import KeyRing
from bookings.auth.passwords import PasswordHasher
from bookings.auth.schemas import RegisterIn
from bookings.auth.service import AuthService
from bookings.config import Settings
from bookings.db import Database
from bookings.errors import BookingsError
from bookings.kit.time import utc_now
from bookings.ops.metrics import Metrics
from bookings.users.models import Role


async def create_admin(settings: Settings, *, email: str, password: str, name: str) -> uuid.UUID:
    try:
        data = RegisterIn(email=email, password=password, name=name, role="user")
    except PydanticValidationError as exc:
        raise ValueError("; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())) from exc
    db = Database(settings)
    auth = AuthService(settings, KeyRing.from_settings(settings), PasswordHasher(settings), Metrics(), utc_now)
    try:
        async with db.write_sessions() as session, session.begin():
            user = await auth.register(session, data, role=Role.ADMIN)
            return user.id
    except BookingsError as exc:
        details = "; ".join(e.message for e in exc.errors or []) if exc.errors else ""
        raise ValueError(f"{exc.detail}{' ' + details if details else ''}") from exc
    finally:
        await db.dispose()
