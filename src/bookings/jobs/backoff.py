"""Retry delays: exponential, capped, with jitter so that a burst of failures does not retry in lockstep."""

from __future__ import annotations

import random


def retry_delay(attempt: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds before the retry that follows failed ``attempt`` (1-based): half fixed, half random ("equal jitter")."""
    ceiling = min(cap, base * 2.0 ** (attempt - 1))
    jitter: float = (rng or random).uniform(0, ceiling / 2)
    return ceiling / 2 + jitter
