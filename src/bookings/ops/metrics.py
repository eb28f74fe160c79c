"""Prometheus metrics, kept on the app's own registry (so that several apps can live in one test process).

Under ``bookings serve --workers N`` each worker is a process of its own; the CLI then sets
``PROMETHEUS_MULTIPROC_DIR`` and every scrape aggregates all workers' values.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "bookings_http_requests",
            "HTTP requests served, by route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "bookings_http_request_duration_seconds",
            "Time from request received to response sent, by route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.bookings_created = Counter("bookings_created", "Bookings created.", registry=self.registry)
        self.bookings_cancelled = Counter("bookings_cancelled", "Bookings cancelled.", registry=self.registry)
        self.logins_failed = Counter("bookings_logins_failed", "Failed login attempts.", registry=self.registry)
        self.rate_limited = Counter(
            "bookings_rate_limited", "Requests refused with 429, by limit.", ["limit"], registry=self.registry
        )
        self.ws_clients = Gauge(
            "bookings_ws_clients",
            "WebSocket clients connected.",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.events_published = Counter(
            "bookings_events_published", "Events published to the bus by the relay.", registry=self.registry
        )
        self.events_delivered = Counter(
            "bookings_events_delivered", "Events sent to WebSocket clients.", registry=self.registry
        )
        self.jobs_scheduled = Counter("bookings_jobs_scheduled", "Jobs scheduled.", ["kind"], registry=self.registry)
        self.jobs_succeeded = Counter("bookings_jobs_succeeded", "Jobs done.", ["kind"], registry=self.registry)
        self.jobs_retried = Counter(
            "bookings_jobs_retried", "Failed attempts that will be retried.", ["kind"], registry=self.registry
        )
        self.jobs_dead = Counter(
            "bookings_jobs_dead_lettered", "Jobs that failed their last attempt.", ["kind"], registry=self.registry
        )
        # The backlog, as every worker sees it (the same numbers from each: read them with max, not sum).
        self.jobs_due = Gauge(
            "bookings_jobs_due",
            "Jobs due now and not yet claimed.",
            ["kind"],
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        self.jobs_oldest_due = Gauge(
            "bookings_jobs_oldest_due_seconds",
            "How long the oldest job due and not yet claimed has waited.",
            ["kind"],
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        self.jobs_dead_now = Gauge(
            "bookings_jobs_dead",
            "Dead letters waiting for an admin (GET /v1/admin/dead-letters).",
            ["kind"],
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        self.reminder_lateness = Histogram(
            "bookings_reminder_lateness_seconds",
            "Time from a reminder's due time to its event being written.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.relay_lag = Histogram(
            "bookings_relay_lag_seconds",
            "Time from an event's commit to its publication on the bus.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def _collecting_registry(self) -> CollectorRegistry:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            merged = CollectorRegistry()
            MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
            return merged
        return self.registry

    def prometheus_text(self) -> bytes:
        return generate_latest(self._collecting_registry())

    def snapshot(self) -> dict[str, Any]:
        """Counters and histogram summaries as plain JSON: ``{name: value}`` or ``{name: [{labels, value}]}``."""
        out: dict[str, Any] = {}
        for family in self._collecting_registry().collect():
            samples = [s for s in family.samples if not s.name.endswith(("_created", "_bucket"))]
            for sample in samples:
                if sample.labels:
                    out.setdefault(sample.name, []).append({"labels": sample.labels, "value": sample.value})
                else:
                    out[sample.name] = sample.value
        return out
