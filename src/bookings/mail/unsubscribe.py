"""One-click unsubscribe links (RFC 8058): a token naming the account, signed so no one can forge another's."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import Sequence


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class UnsubscribeTokens:
    """Any of ``secrets`` verifies, the first signs: a key rotation keeps the links in mail already sent working."""

    def __init__(self, secrets: Sequence[bytes]) -> None:
        self._keys = [hmac.new(secret, b"bookings unsubscribe", hashlib.sha256).digest() for secret in secrets]

    @staticmethod
    def _mac(key: bytes, user_id: uuid.UUID) -> str:
        return _b64(hmac.new(key, user_id.bytes, hashlib.sha256).digest()[:16])

    def token(self, user_id: uuid.UUID) -> str:
        return f"{user_id.hex}.{self._mac(self._keys[0], user_id)}"

    def user_of(self, token: str) -> uuid.UUID | None:
        """The account a token was made for, or None when it is not one of ours."""
        text, _, mac = token.partition(".")
        try:
            user_id = uuid.UUID(hex=text)
        except ValueError:
            return None
        if any(hmac.compare_digest(mac, self._mac(key, user_id)) for key in self._keys):
            return user_id
        return None
