"""What a chaos run does: how long, how hard, and the service settings that make reminders and leases fast."""

from __future__ import annotations

from dataclasses import dataclass

# Event types that change a booking (every other type, the reminder, only reports one).
CHANGES = ("booking.created", "booking.updated", "booking.cancelled")
REMINDER = "booking.reminder"
INSTANCES = ("a", "b")  # "a" starts first, so it holds the relay's lock until it is killed


@dataclass(frozen=True)
class ChaosConfig:
    seed: int = 1
    duration: float = 75.0  # seconds of load; faults fall in its first 80 %
    rounds: int = 2  # each round kills the standby, the leader, the worker, and restarts Redis empty
    rate: float = 25.0  # requests a second, on average (a contested burst counts each of its requests)
    users: int = 16
    providers: int = 6
    lead_seconds: int = 4  # BOOKINGS_REMINDER_LEAD_SECONDS: a soon booking's reminder falls due within the run
    down_seconds: tuple[float, float] = (1.0, 2.5)  # how long a killed part stays down, before its restart
    request_timeout: float = 15.0
    settle_timeout: float = 45.0  # for each wait after the load: reminders run, relay caught up, listeners

    def service_env(self) -> dict[str, str]:
        """Settings for every process, on top of the test suite's (fast argon2, high rate limits)."""
        return {
            "BOOKINGS_REMINDER_LEAD_SECONDS": str(self.lead_seconds),
            "BOOKINGS_JOB_LEASE_SECONDS": "3",  # a killed worker's reminders run again 3 s later
            "BOOKINGS_JOB_POLL_SECONDS": "0.5",
            "BOOKINGS_RELAY_POLL_SECONDS": "0.5",
        }
