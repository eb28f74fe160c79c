"""A settable clock: time is outside the service, so tests may move it."""

from __future__ import annotations

from datetime import UTC, datetime

START = datetime(2031, 1, 1, 9, tzinfo=UTC)


class SettableClock:
    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now
