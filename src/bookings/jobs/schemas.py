"""Dead letters at the edge."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ConfigDict

from bookings.kit.schemas import ApiModel


class DeadLetterOut(ApiModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 42,
                    "kind": "webhook",
                    "payload": {"webhookId": "9a7b3c2d-1e4f-4a5b-8c6d-7e8f9a0b1c2d", "eventId": 1207},
                    "attempts": 8,
                    "maxAttempts": 8,
                    "lastError": "HTTP 503 from https://hooks.example.com/bookings",
                    "dueAt": "2030-05-01T08:50:00Z",
                    "createdAt": "2030-05-01T08:50:00Z",
                    "finishedAt": "2030-05-01T14:31:07Z",
                }
            ]
        }
    )

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
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"id": 42, "state": "pending", "runAt": "2030-05-02T09:00:00Z"}]}
    )

    id: int
    state: str
    run_at: datetime
