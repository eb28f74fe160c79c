"""The key ring signs with its first key, verifies with any, and refuses retired keys."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from bookings.auth.keyring import KeyRing
from bookings.errors import NotAuthenticated
from bookings.users.models import Role

OLD = "old:" + "o" * 40
NEW = "new:" + "n" * 40


def test_rotation_keeps_old_tokens_valid_until_the_old_key_is_dropped() -> None:
    user, now = uuid.uuid4(), datetime.now(UTC)
    token = KeyRing.parse(OLD, issuer="bookings").issue(user, Role.USER, now, timedelta(minutes=5))
    rotated = KeyRing.parse(f"{NEW},{OLD}", issuer="bookings")
    assert rotated.verify(token).user_id == user
    assert jwt.get_unverified_header(rotated.issue(user, Role.USER, now, timedelta(minutes=5)))["kid"] == "new"
    with pytest.raises(NotAuthenticated, match="retired"):
        KeyRing.parse(NEW, issuer="bookings").verify(token)


def test_expired_and_foreign_issuer_tokens_are_refused() -> None:
    now = datetime.now(UTC)
    ring = KeyRing.parse(NEW, issuer="bookings")
    expired = ring.issue(uuid.uuid4(), Role.USER, now - timedelta(hours=1), timedelta(minutes=5))
    with pytest.raises(NotAuthenticated, match="expired"):
        ring.verify(expired)
    foreign = KeyRing.parse(NEW, issuer="someone-else").issue(uuid.uuid4(), Role.USER, now, timedelta(minutes=5))
    with pytest.raises(NotAuthenticated):
        ring.verify(foreign)


@pytest.mark.parametrize("spec", ["", "nokey", "k:short", ":" + "x" * 40])
def test_malformed_rings_are_rejected(spec: str) -> None:
    with pytest.raises(ValueError, match="key"):
        KeyRing.parse(spec, issuer="bookings")
