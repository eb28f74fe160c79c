"""What the benchmark runs: sizes, durations and targets, with command-line overrides."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
LUA_DIR = BENCH_DIR / "lua"

DEFAULT_PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

# The targets the table marks as met or not met: create, get and list (at 1M rows) each at least
# TARGET_VS_PLAIN times the plain baseline's req/s, with a p99 of at most TARGET_P99_MS at 32 connections; the
# list's p50 and p99 at 1M rows within TARGET_SCALE_RATIO of those at 10k.
TARGET_VS_PLAIN = 2.0
TARGET_P99_MS = 50.0
TARGET_SCALE_RATIO = 1.2


@dataclass(frozen=True, slots=True)
class BenchConfig:
    pg_admin_url: str = DEFAULT_PG_ADMIN_URL
    bookings: int = 1_000_000  # rows in the big table (past history plus the list users' upcoming bookings)
    small_every: int = 100  # the small table holds every 100th past booking: about 10,000 rows
    providers: int = 1_000
    users: int = 10_000  # bulk-inserted users (with a copied password hash); the bench's own users come on top
    list_users: int = 4  # users the list and get scenarios log in as
    upcoming_per_list_user: int = 40  # > 20, so the first page is full and the count query runs too
    list_share: int = 25  # 1 past booking in 25 belongs to a list user: a long history (~10,000 each at 1M)
    create_users: int = 4  # users the create scenario logs in as
    history_days: int = 730  # the past bookings spread over this many days
    connections: int = 32
    wrk_threads: int = 1
    warmup_s: float = 2.0
    duration_s: float = 8.0
    rounds: int = 2  # each endpoint: ours, plain, ours, plain (the better run of each is reported)
    workers: int = 2
    keep_db: bool = False

    @property
    def upcoming_count(self) -> int:
        return self.list_users * self.upcoming_per_list_user

    @property
    def past_count(self) -> int:
        return self.bookings - self.upcoming_count


def parse_args(argv: list[str] | None = None) -> BenchConfig:
    defaults = BenchConfig()
    parser = argparse.ArgumentParser(prog="python -m bench", description="Benchmark the bookings service.")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("BENCH_PG_URL", defaults.pg_admin_url),
        help="an admin connection to the PostgreSQL server (the bench creates and drops its own database)",
    )
    parser.add_argument("--bookings", type=int, default=defaults.bookings, help="rows in the big table")
    parser.add_argument("--duration", type=float, default=defaults.duration_s, help="seconds measured per scenario")
    parser.add_argument("--warmup", type=float, default=defaults.warmup_s, help="seconds of warm-up per scenario")
    parser.add_argument(
        "--rounds", type=int, default=defaults.rounds, help="runs of each scenario per server, interleaved"
    )
    parser.add_argument("--connections", type=int, default=defaults.connections, help="concurrent clients")
    parser.add_argument("--wrk-threads", type=int, default=defaults.wrk_threads, help="wrk threads (-t)")
    parser.add_argument("--workers", type=int, default=defaults.workers, help="server worker processes")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database at the end")
    args = parser.parse_args(argv)
    if not 1 <= args.duration <= 120 or not 0 <= args.warmup <= 30:
        parser.error("--duration must be 1 to 120 seconds and --warmup 0 to 30")
    if not 1 <= args.rounds <= 5:
        parser.error("--rounds must be 1 to 5")
    if args.bookings < 100_000:
        parser.error("--bookings must be at least 100000 (the small table is 1% of it)")
    return BenchConfig(
        pg_admin_url=args.pg_url,
        bookings=args.bookings,
        duration_s=args.duration,
        warmup_s=args.warmup,
        rounds=args.rounds,
        connections=args.connections,
        wrk_threads=args.wrk_threads,
        workers=args.workers,
        keep_db=args.keep_db,
    )


def run_arguments(parser: argparse.ArgumentParser, defaults: Any, *, round_help: str) -> None:
    """The options every load bench takes: where PostgreSQL is, how long each run lasts, how many rounds and
    server workers, and whether to keep the database (``defaults`` has ``pg_admin_url``, ``duration_s``, ...)."""
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", defaults.pg_admin_url))
    parser.add_argument("--duration", type=float, default=defaults.duration_s, help="seconds measured per run")
    parser.add_argument("--warmup", type=float, default=defaults.warmup_s, help="seconds of warm-up per run")
    parser.add_argument("--rounds", type=int, default=defaults.rounds, help=round_help)
    parser.add_argument("--workers", type=int, default=defaults.workers, help="server worker processes")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database at the end")


def check_run_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not 1 <= args.duration <= 60 or not 0 <= args.warmup <= 30:
        parser.error("--duration must be 1 to 60 seconds and --warmup 0 to 30")
    if not 1 <= args.rounds <= 5:
        parser.error("--rounds must be 1 to 5")
    if not 1 <= args.workers <= 4:
        parser.error("--workers must be 1 to 4")
