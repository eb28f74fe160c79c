"""``python -m chaos``: the chaos run (``make chaos``); prints the table and exits 1 if any check failed."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
from pathlib import Path

from chaos.config import ChaosConfig
from chaos.run import run


def main(argv: list[str] | None = None) -> int:
    defaults = ChaosConfig()
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seeds the load and the faults")
    parser.add_argument("--duration", type=float, default=defaults.duration, help="seconds of load")
    parser.add_argument("--rounds", type=int, default=defaults.rounds, help="rounds of the four faults")
    parser.add_argument("--rate", type=float, default=defaults.rate, help="requests a second")
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs when every check passes")
    args = parser.parse_args(argv)
    config = ChaosConfig(seed=args.seed, duration=args.duration, rounds=args.rounds, rate=args.rate)
    workdir = Path(tempfile.mkdtemp(prefix="bookings-chaos-"))
    outcome = asyncio.run(run(config, workdir, say=lambda line: print(line, flush=True)))
    print(outcome.render())
    if outcome.ok and not args.keep_logs:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"logs: {workdir}")
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
