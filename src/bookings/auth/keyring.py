"""Access tokens: HS256 JWTs signed by the first key of a ring and verified by any key still in it.

Rotation without logging anyone out: put a new key first (it signs from now on), keep the old one after it
(tokens it signed still verify), and drop the old one once the longest access-token lifetime has passed.
Every token names its key in the ``kid`` header; a token whose key has left the ring is refused.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt

from bookings.config import Settings, generate_key_ring_entry
from bookings.errors import NotAuthenticated
from bookings.users.models import Role

ALGORITHM = "HS256"
MIN_SECRET_BYTES = 32
VERIFIED_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    secret: bytes


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: uuid.UUID
    role: Role
    expires_at: datetime


class KeyRing:
    def __init__(self, keys: list[SigningKey], *, issuer: str) -> None:
        if not keys:
            raise ValueError("the key ring needs at least one key")
        self._signing = keys[0]
        self._by_kid = {key.kid: key for key in keys}
        self._issuer = issuer
        self._verified: dict[str, AccessClaims] = {}

    @property
    def secrets(self) -> list[bytes]:
        """Every key's secret, the signing one first: what other signatures of the deployment derive from."""
        return [self._signing.secret, *(k.secret for k in self._by_kid.values() if k is not self._signing)]

    @classmethod
    def parse(cls, spec: str, *, issuer: str) -> KeyRing:
        """Read ``kid:secret,kid:secret`` (the first signs)."""
        keys: list[SigningKey] = []
        for entry in filter(None, (part.strip() for part in spec.split(","))):
            kid, sep, secret = entry.partition(":")
            if not sep or not kid or len(secret.encode()) < MIN_SECRET_BYTES:
                raise ValueError(f"each key is kid:secret with a secret of at least {MIN_SECRET_BYTES} bytes")
            keys.append(SigningKey(kid=kid, secret=secret.encode()))
        return cls(keys, issuer=issuer)

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        if settings.jwt_keys:
            return cls.parse(settings.jwt_keys, issuer=settings.jwt_issuer)
        if not settings.is_sqlite:
            raise ValueError("BOOKINGS_JWT_KEYS must be set in distributed mode (see .env.example)")
        path = settings.sqlite_path
        if path is None:  # an in-memory database: tokens live as long as the process
            return cls.parse(generate_key_ring_entry(), issuer=settings.jwt_issuer)
        return cls.parse(_embedded_key_file(path.with_name(path.name + ".keys")), issuer=settings.jwt_issuer)

    def issue(self, user_id: uuid.UUID, role: Role, now: datetime, ttl: timedelta) -> str:
        claims = {
            "sub": str(user_id),
            "role": role.value,
            "iss": self._issuer,
            "iat": int(now.timestamp()),
            "exp": int((now + ttl).timestamp()),
            "jti": secrets.token_hex(8),
        }
        return jwt.encode(claims, self._signing.secret, algorithm=ALGORITHM, headers={"kid": self._signing.kid})

    def verify(self, token: str) -> AccessClaims:
        """The claims of a valid token. Verified tokens are remembered (a client sends the same one many times),
        but a remembered token is still refused once it expires."""
        cached = self._verified.get(token)
        if cached is not None:
            if cached.expires_at > datetime.now(UTC):
                return cached
            del self._verified[token]
        claims = self._verify(token)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.pop(next(iter(self._verified)))  # the oldest entry
        self._verified[token] = claims
        return claims

    def _verify(self, token: str) -> AccessClaims:
        try:
            header = jwt.get_unverified_header(token)
            key = self._by_kid.get(str(header.get("kid")))
            if key is None:
                raise NotAuthenticated("The token was signed by an unknown or retired key.")
            claims: dict[str, Any] = jwt.decode(
                token,
                key.secret,
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                options={"require": ["exp", "iat", "sub", "iss"]},
            )
            return AccessClaims(
                user_id=uuid.UUID(claims["sub"]),
                role=Role(claims["role"]),
                expires_at=datetime.fromtimestamp(claims["exp"], UTC),
            )
        except jwt.ExpiredSignatureError as exc:
            raise NotAuthenticated("The access token has expired.") from exc
        except (jwt.PyJWTError, KeyError, ValueError, TypeError) as exc:
            raise NotAuthenticated("The access token is invalid.") from exc


def _embedded_key_file(path: Path) -> str:
    """The embedded mode's ring, made once and kept beside the database so restarts keep sessions."""
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(generate_key_ring_entry() + "\n")
    return path.read_text().strip()
