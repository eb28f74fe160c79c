"""Dead letters at the edge."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bookings.kit.schemas import ApiModel


class DeadLetterOut(ApiModel):
    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    last_error: str | None
    due_at: datetime
    created_at: datetime
    finished_at: datetime | None


class RetriedOut(ApiModel):
    id: int
    state: str
    run_at: datetime
