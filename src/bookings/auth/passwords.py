"""Password policy and argon2id hashing."""

from __future__ import annotations

import string

import anyio.to_thread
from argon2 import PasswordHasher as Argon2Hasher
from argon2.exceptions import InvalidHashError, VerificationError

from bookings.config import Settings
from bookings.errors import FieldError

MIN_LENGTH = 8
MAX_LENGTH = 128

_RULES: list[tuple[str, str]] = [
    ("password_missing_uppercase", "must contain an upper-case letter"),
    ("password_missing_lowercase", "must contain a lower-case letter"),
    ("password_missing_digit", "must contain a digit"),
    ("password_missing_special", "must contain a special character (not a letter, digit or space)"),
]


def policy_violations(password: str, field: str = "password") -> list[FieldError]:
    """Every rule the password breaks, so the caller can fix them all at once."""
    found: list[FieldError] = []
    if len(password) < MIN_LENGTH:
        found.append(
            FieldError(field=field, message=f"must be at least {MIN_LENGTH} characters", type="password_too_short")
        )
    if len(password) > MAX_LENGTH:
        found.append(
            FieldError(field=field, message=f"must be at most {MAX_LENGTH} characters", type="password_too_long")
        )
    checks = [
        any(c.isupper() for c in password),
        any(c.islower() for c in password),
        any(c in string.digits for c in password),
        any(not c.isalnum() and not c.isspace() for c in password),
    ]
    for ok, (code, message) in zip(checks, _RULES, strict=True):
        if not ok:
            found.append(FieldError(field=field, message=message, type=code))
    return found


class PasswordHasher:
    """argon2id in a worker thread, so that hashing never stalls the event loop."""

    def __init__(self, settings: Settings) -> None:
        self._argon2 = Argon2Hasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_cost_kib,
            parallelism=settings.argon2_parallelism,
        )
        # Verified against when the email is unknown, so a miss costs as much time as a wrong password.
        self._decoy = self._argon2.hash("decoy password that matches nothing")

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(self._argon2.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        return await anyio.to_thread.run_sync(self._verify, password_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        return self._argon2.check_needs_rehash(password_hash)

    def _verify(self, password_hash: str | None, password: str) -> bool:
        try:
            return self._argon2.verify(password_hash or self._decoy, password) and password_hash is not None
        except (VerificationError, InvalidHashError):
            return False
