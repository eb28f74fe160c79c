"""What a key is, what it is compared by, and the outcome it replays.

A key is the caller's (two users may pick the same one), 1-255 visible ASCII characters. Its fingerprint is a
SHA-256 of the method, the path with its ids, the body as canonical JSON and any ``If-Match``: the same key with a
different request is a client bug, refused with ``422`` rather than answered with another request's outcome.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from bookings.errors import BookingsError, Conflict, InvalidInput
from bookings.kit.responses import JSONBytes

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
_VALID = re.compile(r"[\x21-\x7e]{1,255}")
# Advisory lock space of (caller, key) on PostgreSQL: a concurrent duplicate finds it taken and is told to retry.
LOCK_SPACE = 0x69646D70  # "idmp"
IN_USE_RETRY_SECONDS = 1


class InvalidIdempotencyKey(BookingsError):
    status, title, slug = 400, "Invalid idempotency key", "invalid-idempotency-key"


class IdempotencyKeyReused(InvalidInput):
    title, slug = "Idempotency key reused", "idempotency-key-reused"


class IdempotencyKeyInUse(Conflict):
    title, slug = "Idempotency key in use", "idempotency-key-in-use"

    def __init__(self) -> None:
        super().__init__("A request with this Idempotency-Key is still running; retry once it has finished.")
        self.headers["Retry-After"] = str(IN_USE_RETRY_SECONDS)


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    caller_id: uuid.UUID
    key: str
    fingerprint: str

    @property
    def lock_name(self) -> str:
        """What the PostgreSQL advisory lock hashes (with ``LOCK_SPACE``)."""
        return f"{self.caller_id}:{self.key}"


@dataclass(frozen=True, slots=True)
class Outcome:
    """A successful answer, as it is sent and as it is stored for replay."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    replayed: bool = False

    def response(self) -> JSONBytes:
        headers = {**self.headers, REPLAYED: "true"} if self.replayed else self.headers
        return JSONBytes(self.body, status_code=self.status, headers=headers)


def _canonical(body: bytes) -> str:
    if not body.strip():
        return ""
    return json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


async def key_of(request: Request, caller_id: uuid.UUID, header: str | None) -> IdempotencyKey | None:
    """The request's key, or ``None`` without one. Call after the body was validated (it is valid JSON then)."""
    if header is None:
        return None
    if not _VALID.fullmatch(header):
        raise InvalidIdempotencyKey(f"{HEADER} must be 1 to 255 visible ASCII characters.")
    parts = (request.method, request.url.path, _canonical(await request.body()), request.headers.get("if-match", ""))
    fingerprint = hashlib.sha256("\n".join(parts).encode()).hexdigest()
    return IdempotencyKey(caller_id, header, fingerprint)


def replay(key: IdempotencyKey, fingerprint: str, status: int, body: str, headers: dict[str, Any]) -> Outcome:
    """The stored outcome of ``key``, if it was stored for the same request."""
    if fingerprint != key.fingerprint:
        raise IdempotencyKeyReused(f"This {HEADER} was used for a different request; use a new key for a new request.")
    return Outcome(status, body.encode(), {str(k): str(v) for k, v in headers.items()}, replayed=True)
