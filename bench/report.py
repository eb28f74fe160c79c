"""The final report: each scenario on each server with its CPU per request and its ratio to the plain baseline,
the details (rounds, the asyncpg and bare baselines, connections, cores), and the targets marked met or not."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bench.config import TARGET_P99_MS, TARGET_SCALE_RATIO, TARGET_VS_PLAIN, BenchConfig
from bench.runner import Series, cpu_us
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
    redis: str = ""
    commit: str = ""
    same_json: str = ""  # whether the two servers answered the same JSON to the same requests
    restarts: dict[str, int] = field(default_factory=dict)  # workers uvicorn replaced, per server


@dataclass(frozen=True, slots=True)
class Row:
    label: str
    server: str  # "ours", "plain" or "asyncpg"
    series: Series
    plain: LoadResult | None = None  # the plain baseline's reported run of the same scenario
    asyncpg: LoadResult | None = None  # the same SQL through asyncpg
    bare: LoadResult | None = None  # GET /health/live on the same server

    @property
    def result(self) -> LoadResult:
        return self.series.best


@dataclass(frozen=True, slots=True)
class Target:
    text: str
    measured: str
    met: bool


def _cpu_total(result: LoadResult) -> float:
    us = cpu_us(result)
    return sum(us) if us else 0.0


def _vs_plain(row: Row) -> str:
    plain = row.plain
    if plain is None or not plain.rps:
        return "-"
    p99 = row.result.p99_ms / plain.p99_ms if plain.p99_ms else 0.0
    cpu = _cpu_total(row.result) / _cpu_total(plain) if _cpu_total(plain) else 0.0
    return f"{row.result.rps / plain.rps:.2f}x req/s, {p99:.2f}x p99, {cpu:.2f}x CPU/req"


def _ratio(result: LoadResult, baseline: LoadResult | None) -> str:
    if baseline is None or result is baseline:
        return "-"
    rps = result.rps / baseline.rps if baseline.rps else 0.0
    p50 = result.p50_ms / baseline.p50_ms if baseline.p50_ms else 0.0
    return f"{rps:.2f}x req/s, {p50:.1f}x p50"


def _us(row: Row, k: int) -> str:
    us = cpu_us(row.result)
    if us is None or (k == 0 and row.server == "asyncpg") or (k == 2 and row.server != "ours"):
        return "-"
    return f"{us[k]:,.0f}"


def format_table(header: Sequence[str], lines: Sequence[Sequence[str]], right: set[int]) -> list[str]:
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header))]

    def fmt(cells: Sequence[str]) -> str:
        padded = (c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True)))
        return " | ".join(padded).rstrip()

    return [fmt(header), "-+-".join("-" * w for w in widths), *(fmt(line) for line in lines)]


def table(rows: list[Row]) -> str:
    header = ["scenario", "server", "req/s", "p50 ms", "p99 ms", "errors", "svc µs/req", "pg µs/req", "redis µs/req"]
    lines = [
        [
            row.label,
            row.server,
            f"{row.result.rps:,.0f}",
            f"{row.result.p50_ms:.2f}",
            f"{row.result.p99_ms:.2f}",
            str(row.series.errors),
            _us(row, 0),
            _us(row, 1),
            _us(row, 2),
            _vs_plain(row),
        ]
        for row in rows
    ]
    out = format_table([*header, "ours vs plain"], lines, right={2, 3, 4, 5, 6, 7, 8})
    details = [f"  {run.name}: {run.error_detail}" for row in rows for run in row.series.runs if run.errors]
    if details:
        out += ["", "errors (non-2xx responses, socket errors, timeouts), in any run:", *details]
    return "\n".join(out)


def details(rows: list[Row]) -> str:
    header = ["scenario", "server", "rounds req/s", "vs asyncpg", "vs bare endpoint", "conns", "db connects", "CPU"]
    lines = [
        [
            row.label,
            row.server,
            " / ".join(f"{run.rps:,.0f}" for run in row.series.runs),
            _ratio(row.result, row.asyncpg),
            _ratio(row.result, row.bare),
            row.result.spread or "-",
            "-" if row.result.db_connects is None else str(row.result.db_connects),
            row.result.cpu.describe() if row.result.cpu else "-",
        ]
        for row in rows
    ]
    return "\n".join(format_table(header, lines, right={6}))


def sql_scaling(big: tuple[float, float], small: tuple[float, float]) -> str:
    """The upcoming SQL alone at both sizes (sequential, one connection): the database's share of the ratio."""
    return (
        f"  (the upcoming SQL alone, one query at a time through asyncpg: p50 {big[0]:.3f} ms at 1M vs "
        f"{small[0]:.3f} ms at 10k = {big[0] / small[0]:.2f}x, p99 {big[1]:.3f} vs {small[1]:.3f} ms = "
        f"{big[1] / small[1]:.2f}x)"
    )


def header(config: BenchConfig, facts: Facts) -> str:
    return (
        f"bookings benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {facts.commit}, "
        f"{os.cpu_count()} cores ({facts.idle_load:.2f} busy with other work before the run), "
        f"PostgreSQL {facts.postgres}, Redis {facts.redis}\n"
        f"ours: `bookings serve --workers {config.workers}` at its defaults (log level INFO: a JSON access-log line "
        "per request) in distributed mode with a private redis-server, rate limits on at 1000000/minute\n"
        f"plain: `uvicorn bench.plain_app:app --workers {config.workers}` (FastAPI + asyncpg, pool of 10 per worker, "
        f"uvicorn's access log on) on the same database; {facts.same_json}\n"
        f"load: wrk -t{config.wrk_threads} -c{config.connections}, {config.duration_s:g} s measured after "
        f"{config.warmup_s:g} s of warm-up, {config.rounds} interleaved rounds per scenario (ours, plain, ours, ...), "
        f"the run with the most req/s of each reported; asyncpg: {config.connections} tasks, one connection each\n"
        f"data: {facts.big_rows:,} bookings ({facts.small_rows:,} for the 10k rows), {config.providers:,} providers, "
        f"{config.users:,} users; each list user has {facts.big_profile[0]:,} past bookings "
        f"({facts.small_profile[0]:,} at 10k) and {facts.big_profile[1]} upcoming\n"
        "µs/req: CPU time per request of the server's processes (svc), of PostgreSQL (pg) and of the private Redis; "
        "ours vs plain: req/s, p99 and CPU per request (svc + pg + redis) of ours over the plain baseline's"
    )


def compose(config: BenchConfig, facts: Facts, rows: list[Row], found: list[Target]) -> str:
    return (
        f"{header(config, facts)}\n\n{table(rows)}\n\n"
        "details (rounds: req/s of every measured run; vs: req/s and p50 over the baseline's; conns: client "
        "connections per worker; db connects: PostgreSQL sessions opened during the run; CPU: cores busy)\n"
        f"{details(rows)}\n\ntargets:\n{targets_text(found)}\n"
        f"{sql_scaling(facts.sql_big, facts.sql_small)}\n{busy_warning(rows)}{restart_warning(facts.restarts)}"
    )


def restart_warning(restarts: dict[str, int]) -> str:
    """A note when uvicorn's supervisor replaced workers: the server then ran with fewer workers for a while."""
    found = [f"{label} {count} time{'s' if count > 1 else ''}" for label, count in restarts.items() if count]
    if not found:
        return ""
    return (
        "\nWARNING: uvicorn's supervisor replaced workers during the run (" + ", ".join(found) + "; see the server "
        "logs in bench/results/). It kills a worker that does not answer its health ping within 5 s, also one still "
        "starting up; meanwhile the other workers serve every connection (conns shows it, e.g. 32/0), and every "
        "start-up counts as the server's CPU.\n"
    )


def busy_warning(rows: list[Row], threshold: float = 0.2) -> str:
    """A note when something outside the bench kept the cores busy during a measured run."""
    noisy: list[str] = []
    for row in rows:
        others = [run.cpu.other for run in row.series.runs if run.cpu is not None]
        if any(other > threshold for other in others):
            noisy.append(
                f"{' '.join(row.label.split())} ({row.server}) " + "/".join(f"{other:.2f}" for other in others)
            )
    if not noisy:
        return ""
    return (
        "\nWARNING: other processes on this machine used CPU during the runs (cores, each run of the row): "
        + ", ".join(noisy)
        + "; those figures are lower than an idle machine would give.\n"
    )


def _vs_plain_target(name: str, ours: LoadResult, plain: LoadResult) -> Target:
    ratio = ours.rps / plain.rps if plain.rps else float("inf")
    return Target(
        f"{name} >= {TARGET_VS_PLAIN:g}x plain req/s, p99 <= {TARGET_P99_MS:.0f} ms",
        f"{ratio:.2f}x ({ours.rps:,.0f} vs {plain.rps:,.0f} req/s), p99 {ours.p99_ms:.1f} ms",
        ratio >= TARGET_VS_PLAIN and ours.p99_ms <= TARGET_P99_MS,
    )


def targets(pairs: dict[str, tuple[LoadResult, LoadResult]], list_1m: LoadResult, list_10k: LoadResult) -> list[Target]:
    """``pairs``: (ours, plain) of each compared endpoint; then the list's latency at 1M rows against 10k."""
    p50_ratio = list_1m.p50_ms / list_10k.p50_ms if list_10k.p50_ms else float("inf")
    p99_ratio = list_1m.p99_ms / list_10k.p99_ms if list_10k.p99_ms else float("inf")
    found = [_vs_plain_target(name, ours, plain) for name, (ours, plain) in pairs.items()]
    found.append(
        Target(
            f"list latency 1M vs 10k <= {TARGET_SCALE_RATIO}x (p50 and p99)",
            f"p50 {p50_ratio:.2f}x ({list_1m.p50_ms:.2f} / {list_10k.p50_ms:.2f} ms), "
            f"p99 {p99_ratio:.2f}x ({list_1m.p99_ms:.2f} / {list_10k.p99_ms:.2f} ms)",
            p50_ratio <= TARGET_SCALE_RATIO and p99_ratio <= TARGET_SCALE_RATIO,
        )
    )
    return found


def targets_text(found: list[Target]) -> str:
    width = max(len(t.text) for t in found)
    measured = max(len(t.measured) for t in found)
    return "\n".join(
        f"  {t.text.ljust(width)} | {t.measured.ljust(measured)} | {'met' if t.met else 'NOT MET'}" for t in found
    )
