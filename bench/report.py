"""The final table: each scenario, its ratios against the two baselines, and the targets marked met or not."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime

from bench.config import (
    TARGET_CREATE_RPS,
    TARGET_LIST_P99_MS,
    TARGET_LIST_RPS,
    TARGET_SCALE_RATIO,
    BenchConfig,
)
from bench.wrk import LoadResult


@dataclass
class Facts:
    """What the header says about the run, gathered as it goes."""

    idle_load: float = 0.0  # cores busy with other work just before the bench started
    small_rows: int = 0
    big_rows: int = 0
    small_profile: tuple[int, int] = (0, 0)  # (past, upcoming) bookings of one list user
    big_profile: tuple[int, int] = (0, 0)
    sql_small: tuple[float, float] = (0.0, 0.0)  # (p50, p99) ms of the upcoming SQL alone
    sql_big: tuple[float, float] = (0.0, 0.0)
    postgres: str = ""
    commit: str = ""


@dataclass(frozen=True, slots=True)
class Row:
    label: str
    result: LoadResult
    asyncpg: LoadResult | None = None  # the same SQL through asyncpg
    bare: LoadResult | None = None  # GET /health/live on the same server


@dataclass(frozen=True, slots=True)
class Target:
    text: str
    measured: str
    met: bool


def _ratio(result: LoadResult, baseline: LoadResult | None) -> str:
    if baseline is None or result is baseline:
        return "-"
    rps = result.rps / baseline.rps if baseline.rps else 0.0
    p50 = result.p50_ms / baseline.p50_ms if baseline.p50_ms else 0.0
    return f"{rps:.2f}x req/s, {p50:.1f}x p50"


def table(rows: list[Row]) -> str:
    header = [
        "scenario",
        "req/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "vs asyncpg",
        "vs bare endpoint",
        "conns",
        "db connects",
        "CPU cores",
    ]
    lines = [
        [
            row.label,
            f"{row.result.rps:,.0f}",
            f"{row.result.p50_ms:.2f}",
            f"{row.result.p99_ms:.2f}",
            str(row.result.errors),
            _ratio(row.result, row.asyncpg),
            _ratio(row.result, row.bare),
            row.result.spread or "-",
            "-" if row.result.db_connects is None else str(row.result.db_connects),
            row.result.cpu.describe() if row.result.cpu else "-",
        ]
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header))]
    right = {1, 2, 3, 4, 8}

    def fmt(cells: list[str]) -> str:
        padded = (c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True)))
        return " | ".join(padded)

    out = [fmt(header), "-+-".join("-" * w for w in widths)]
    out += [fmt(line) for line in lines]
    details = [f"  {row.label}: {row.result.error_detail}" for row in rows if row.result.errors]
    if details:
        out += ["", "errors (non-2xx responses, socket errors, timeouts):", *details]
    return "\n".join(out)


def sql_scaling(big: tuple[float, float], small: tuple[float, float]) -> str:
    """The upcoming SQL alone at both sizes (sequential, one connection): the database's share of the ratio."""
    return (
        f"  (the upcoming SQL alone, one query at a time through asyncpg: p50 {big[0]:.3f} ms at 1M vs "
        f"{small[0]:.3f} ms at 10k = {big[0] / small[0]:.2f}x, p99 {big[1]:.3f} vs {small[1]:.3f} ms = "
        f"{big[1] / small[1]:.2f}x)"
    )


def compose(config: BenchConfig, facts: Facts, rows: list[Row], found: list[Target]) -> str:
    header = (
        f"bookings benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {facts.commit}, {os.cpu_count()} cores "
        f"({facts.idle_load:.2f} busy with other work before the run), PostgreSQL {facts.postgres}\n"
        f"service: `bookings serve --workers {config.workers}` with BOOKINGS_LOG_LEVEL=WARNING (no access log); "
        f"load: wrk -t{config.wrk_threads} -c{config.connections}, {config.duration_s:.0f} s measured after "
        f"{config.warmup_s:.0f} s of warm-up; asyncpg: {config.connections} tasks, one connection each\n"
        f"data: {facts.big_rows:,} bookings ({facts.small_rows:,} for the 10k run), {config.providers:,} providers, "
        f"{config.users:,} users; each list user has {facts.big_profile[0]:,} past bookings "
        f"({facts.small_profile[0]:,} at 10k) and {facts.big_profile[1]} upcoming\n"
        "vs: the scenario's req/s divided by the baseline's, and its p50 divided by the baseline's; conns: client "
        "connections per worker; db connects: PostgreSQL sessions opened during the measured run; CPU cores: "
        "average cores busy (service, per worker; PostgreSQL; load generator; anything else)"
    )
    return (
        f"{header}\n\n{table(rows)}\n\ntargets:\n{targets_text(found)}\n"
        f"{sql_scaling(facts.sql_big, facts.sql_small)}\n{busy_warning(rows)}"
    )


def busy_warning(rows: list[Row], threshold: float = 0.2) -> str:
    """A note when something outside the bench kept the cores busy during a measurement."""
    busy = [(row.label.split()[0], row.result.cpu.other) for row in rows if row.result.cpu]
    noisy = [f"{name} {other:.2f}" for name, other in busy if other > threshold]
    if not noisy:
        return ""
    return (
        "\nWARNING: other processes on this machine used CPU during the runs (cores: "
        + ", ".join(noisy)
        + "); those figures are lower than an idle machine would give.\n"
    )


def targets(list_1m: LoadResult, list_10k: LoadResult, create: LoadResult) -> list[Target]:
    p50_ratio = list_1m.p50_ms / list_10k.p50_ms if list_10k.p50_ms else float("inf")
    p99_ratio = list_1m.p99_ms / list_10k.p99_ms if list_10k.p99_ms else float("inf")
    return [
        Target(
            f"list upcoming @1M >= {TARGET_LIST_RPS:,.0f} req/s with p99 <= {TARGET_LIST_P99_MS:.0f} ms",
            f"{list_1m.rps:,.0f} req/s, p99 {list_1m.p99_ms:.1f} ms",
            list_1m.rps >= TARGET_LIST_RPS and list_1m.p99_ms <= TARGET_LIST_P99_MS,
        ),
        Target(
            f"create >= {TARGET_CREATE_RPS:,.0f} req/s",
            f"{create.rps:,.0f} req/s",
            create.rps >= TARGET_CREATE_RPS,
        ),
        Target(
            f"list latency 1M vs 10k <= {TARGET_SCALE_RATIO}x (p50 and p99)",
            f"p50 {p50_ratio:.2f}x ({list_1m.p50_ms:.2f} / {list_10k.p50_ms:.2f} ms), "
            f"p99 {p99_ratio:.2f}x ({list_1m.p99_ms:.2f} / {list_10k.p99_ms:.2f} ms)",
            p50_ratio <= TARGET_SCALE_RATIO and p99_ratio <= TARGET_SCALE_RATIO,
        ),
    ]


def targets_text(found: list[Target]) -> str:
    width = max(len(t.text) for t in found)
    measured = max(len(t.measured) for t in found)
    return "\n".join(
        f"  {t.text.ljust(width)} | {t.measured.ljust(measured)} | {'met' if t.met else 'NOT MET'}" for t in found
    )
