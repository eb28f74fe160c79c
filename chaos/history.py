"""The event history replayed in id order: each provider's confirmed bookings at every point, and each reminder
against the state of its booking when it fired."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chaos.config import CHANGES, REMINDER


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass(frozen=True)
class State:
    provider: str
    start: datetime
    end: datetime
    confirmed: bool

    def overlaps(self, other: State) -> bool:
        return self.start < other.end and other.start < self.end  # half-open, as the database's '[)'


@dataclass
class Replay:
    changes: int = 0
    busiest: int = 0  # the most confirmed bookings one provider held at once
    overlaps: list[str] = field(default_factory=list)
    reminders: int = 0
    reminded: Counter[tuple[str, datetime]] = field(default_factory=Counter)
    reminded_twice: list[str] = field(default_factory=list)
    reminded_cancelled: list[str] = field(default_factory=list)  # fired while its booking was cancelled
    reminded_old_time: list[str] = field(default_factory=list)  # fired for a start time its booking no longer had


def replay(events: list[dict[str, Any]]) -> Replay:
    result = Replay()
    states: dict[str, State] = {}
    confirmed: dict[str, set[str]] = defaultdict(set)
    for event in events:
        if event["id"] is None:
            continue
        data, where = event["data"], f"event {event['id']} booking {event['data']['id']}"
        booking = data["id"]
        if event["type"] in CHANGES:
            result.changes += 1
            start, end = instant(data["startTime"]), instant(data["endTime"])
            state = State(data["providerId"], start, end, data["status"] == "confirmed")
            states[booking] = state
            held = confirmed[state.provider]
            held.discard(booking)
            if state.confirmed:
                result.overlaps += [f"{where} over {other}" for other in held if states[other].overlaps(state)]
                held.add(booking)
                result.busiest = max(result.busiest, len(held))
        elif event["type"] == REMINDER:
            result.reminders += 1
            start = instant(data["startTime"])
            result.reminded[booking, start] += 1
            if result.reminded[booking, start] == 2:
                result.reminded_twice.append(f"{where} at {data['startTime']}")
            now = states.get(booking)
            if now is None or not now.confirmed:
                result.reminded_cancelled.append(where)
            elif now.start != start:
                result.reminded_old_time.append(f"{where} for {data['startTime']}, booked {now.start.isoformat()}")
    return result
