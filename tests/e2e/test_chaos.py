"""The short chaos run (issue 13): two instances, a worker and Redis under load, each killed once; no promise breaks.

``make chaos`` runs the long version (two rounds of faults, 75 s); this one is one round over 20 s of load.
"""

from __future__ import annotations

from pathlib import Path

from chaos.config import ChaosConfig
from chaos.run import run

SHORT = ChaosConfig(seed=13, duration=20, rounds=1)


class TestChaosRun:
    async def test_killing_each_part_once_under_load_breaks_no_promise(self, tmp_path: Path) -> None:
        outcome = await run(SHORT, tmp_path, say=lambda _line: None)
        assert outcome.ok, f"\n{outcome.render()}\nlogs: {tmp_path}"
        assert len(outcome.checks) == 5
