"""The five checks of a chaos run, from the database's snapshot and from what the clients recorded."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from chaos.config import CHANGES
from chaos.faults import FaultInjector
from chaos.history import Replay, instant, replay
from chaos.listeners import AdminListener
from chaos.report import Check
from chaos.snapshot import Row, Snapshot
from chaos.traffic import Attempt

EXPECTED = {"create": {201, 409}, "reschedule": {200, 409}, "cancel": {200, 409}}
DOWN_GRACE_SECONDS = 1.0  # after a restarted instance answers, a pooled connection may still fail once
EARLY_TOLERANCE = timedelta(seconds=1)


@dataclass
class Run:
    """Everything the checks read."""

    attempts: list[Attempt]
    snapshot: Snapshot
    listeners: list[AdminListener]
    faults: FaultInjector
    started: float  # event-loop time the load started
    cutoff: datetime  # the end of the load: every reminder due by then must have fired
    lead: timedelta


def evaluate(run: Run) -> list[Check]:
    history = replay(run.snapshot.events)
    return [stored(run), overlaps(run, history), events(run), reminders(run, history), answers(run)]


def _operations(attempts: Iterable[Attempt]) -> dict[str, Attempt]:
    """The last attempt of each operation: a refused one was never sent, and went to the other instance."""
    return {attempt.tag: attempt for attempt in attempts}


def stored(run: Run) -> Check:
    check = Check("every accepted booking is stored, and nothing else")
    creates = {tag: a for tag, a in _operations(run.attempts).items() if a.op == "create"}
    accepted = {a.body["id"]: tag for tag, a in creates.items() if a.status == 201 and a.body}
    rows = {str(row["id"]): row for row in run.snapshot.bookings}
    unknown = [tag for tag, a in creates.items() if a.unknown]
    unknown_stored, unaccounted = 0, []
    for booking_id, row in rows.items():
        attempt = creates.get(row["notes"])
        if attempt is None:
            unaccounted.append(f"{booking_id}: notes {row['notes']!r} name no request")
        elif attempt.unknown:
            unknown_stored += 1
        elif attempt.status != 201 or attempt.body is None or attempt.body["id"] != booking_id:
            unaccounted.append(
                f"{booking_id}: its request {attempt.tag} was answered {attempt.status or attempt.error}"
            )
    check.count("creates sent", len(creates))
    check.count("accepted (201)", len(accepted))
    check.count("refused, slot taken (409)", sum(a.status == 409 for a in creates.values()))
    check.count("no answer (dropped): unknown", len(unknown))
    check.count("  unknown, and stored", unknown_stored)
    check.count("  unknown, and not stored", len(unknown) - unknown_stored)
    check.count("bookings stored", len(rows))
    check.none("accepted but not stored", [f"{b} ({tag})" for b, tag in accepted.items() if b not in rows])
    check.none("stored without an accepted request", unaccounted)
    return check


def overlaps(run: Run, history: Replay) -> Check:
    check = Check("no two confirmed bookings of a provider ever overlapped")
    check.count("changes replayed in id order", history.changes)
    check.count("most confirmed at once, one provider", history.busiest)
    check.none("overlaps at any point of the history", history.overlaps)
    check.none("overlaps at the end (SQL)", [f"{o['first']} and {o['second']}" for o in run.snapshot.overlaps])
    return check


def _same_message(message: dict[str, Any], row: Row | None) -> bool:
    return row is not None and message.get("event") == row["type"] and message.get("data") == row["data"]


def _describes(data: dict[str, Any], row: Row) -> bool:
    """The event's snapshot is the booking as stored."""
    return (
        data["status"] == row["status"]
        and instant(data["startTime"]) == row["start_time"]
        and instant(data["endTime"]) == row["end_time"]
        and data["notes"] == row["notes"]
        and (data["userId"], data["providerId"]) == (str(row["user_id"]), str(row["provider_id"]))
    )


def _mismatched_histories(snapshot: Snapshot) -> list[str]:
    """Bookings whose change events do not add up to the stored row: one created first, one event per version,
    nothing after a cancellation, the last one describing the row."""
    changes: dict[str, list[Row]] = defaultdict(list)
    for event in snapshot.events:
        if event["id"] is not None and event["type"] in CHANGES:
            changes[event["data"]["id"]].append(event)
    wrong = []
    for row in snapshot.bookings:
        booking_id = str(row["id"])
        types = [event["type"] for event in changes[booking_id]]
        if len(types) != row["version"]:
            wrong.append(f"{booking_id}: {len(types)} events for version {row['version']}")
        elif types[0] != CHANGES[0] or CHANGES[0] in types[1:] or CHANGES[2] in types[:-1]:
            wrong.append(f"{booking_id}: events out of order {types}")
        elif not _describes(changes[booking_id][-1]["data"], row):
            wrong.append(f"{booking_id}: its last event is not the stored row")
    stored = {str(row["id"]) for row in snapshot.bookings}
    return wrong + [
        f"{booking_id}: events of a booking not stored" for booking_id in changes if booking_id not in stored
    ]


def events(run: Run) -> Check:
    check = Check("every change has its event; each listener got each once")
    snapshot, last = run.snapshot, run.snapshot.last_id
    numbered = {event["id"]: event for event in snapshot.events if event["id"] is not None}
    check.count("events, ids 1..N", last)
    check.none("ids missing from 1..N", [str(i) for i in range(1, last + 1) if i not in numbered])
    check.none("events never numbered", [f"seq {e['seq']}" for e in snapshot.events if e["id"] is None])
    behind = [f"bookmark {snapshot.published_through}"] if snapshot.published_through < last else []
    check.none("numbered but not published", behind)
    check.none("bookings whose events do not match their row", _mismatched_histories(snapshot))
    recorded = {
        (e["data"]["id"], json.dumps(e["data"], sort_keys=True)) for e in numbered.values() if e["type"] in CHANGES
    }
    acknowledged = [a for a in _operations(run.attempts).values() if a.body is not None and a.status in (200, 201)]
    missing = [a.tag for a in acknowledged if _key(a) not in recorded]
    check.count("changes acknowledged to clients", len(acknowledged))
    check.none("acknowledged changes without their event", missing)
    for listener in run.listeners:
        name = f"listener on {listener.instance}"
        heard = [i for i in listener.events if i <= last]
        check.count(f"{name}: messages", listener.received)
        check.count(f"{name}: duplicates dropped", listener.received - len(listener.events))
        check.count(f"{name}: reconnections", max(0, len(listener.connections) - 1))
        check.none(f"{name}: events missing", [str(i) for i in range(1, last + 1) if i not in listener.events])
        check.none(f"{name}: out of sequence in one socket", [str(c.since) for c in listener.connections if c.gaps()])
        unlike = [str(i) for i in heard if not _same_message(listener.events[i], numbered.get(i))]
        check.none(f"{name}: events unlike the table", unlike + ["a copy"] * listener.differing_copies)
    return check


def _key(attempt: Attempt) -> tuple[str, str]:
    body = attempt.body or {}
    return str(body.get("id")), json.dumps(body, sort_keys=True)


def reminders(run: Run, history: Replay) -> Check:
    check = Check("each due reminder fired once, for the current time")
    bookings = run.snapshot.bookings
    due = [b for b in bookings if b["status"] == "confirmed" and b["start_time"] - run.lead <= run.cutoff]
    fired = history.reminded
    unfired = [f"{b['id']} at {b['start_time']:%H:%M:%S.%f}" for b in due if not fired[_reminder_key(b)]]
    early = [
        f"event {e['id']}"
        for e in run.snapshot.events
        if e["type"] == "booking.reminder"
        and e["occurred_at"] < instant(e["data"]["startTime"]) - run.lead - EARLY_TOLERANCE
    ]
    dead = [f"job {j['id']}" for j in run.snapshot.reminder_jobs if j["state"] == "dead"]
    states = Counter(job["state"] for job in run.snapshot.reminder_jobs)
    check.count(
        "reminder jobs: done, cancelled, pending", f"{states['done']}/{states['cancelled']}/{states['pending']}"
    )
    check.count("reminder events", history.reminders)
    check.count("due (confirmed, start - lead <= end of load)", len(due))
    check.count("  fired for the booking's current time", sum(fired[_reminder_key(b)] == 1 for b in due))
    check.none("due but not fired", unfired)
    check.none("fired twice for one booking and time", history.reminded_twice)
    check.none("fired while the booking was cancelled", history.reminded_cancelled)
    check.none("fired for a time the booking no longer had", history.reminded_old_time)
    check.none("fired before due", early)
    check.none("reminder jobs dead", dead)
    return check


def _reminder_key(booking: Row) -> tuple[str, datetime]:
    return str(booking["id"]), booking["start_time"].astimezone(UTC)


def answers(run: Run) -> Check:
    check = Check("no 5xx; connection errors only while down")
    outcomes = Counter((a.op, str(a.status or a.error)) for a in run.attempts)
    for (op, outcome), n in sorted(outcomes.items()):
        check.count(f"{op}: {outcome}", n)

    def at(attempt: Attempt) -> str:
        start, end = attempt.started - run.started, attempt.ended - run.started
        return f"{attempt.tag} on {attempt.instance} at {start:.1f}-{end:.1f} s"

    check.none("5xx", [f"{at(a)}: {a.status}" for a in run.attempts if a.status and a.status >= 500])
    unexpected = [a for a in run.attempts if a.status and a.status < 500 and a.status not in EXPECTED[a.op]]
    check.none("other unexpected statuses", [f"{at(a)}: {a.status}" for a in unexpected])
    outside = [a for a in run.attempts if a.error and not _while_down(run.faults, a)]
    check.none("connection errors while the instance was up", [f"{at(a)}: {a.error}" for a in outside])
    return check


def _while_down(faults: FaultInjector, attempt: Attempt) -> bool:
    """The request's lifetime met an outage of its instance."""
    return any(
        outage.target == attempt.instance and outage.meets(attempt.started, attempt.ended, DOWN_GRACE_SECONDS)
        for outage in faults.outages
    )
