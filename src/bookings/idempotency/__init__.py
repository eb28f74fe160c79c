"""``Idempotency-Key``: a retried write replays its first outcome instead of applying twice (design invariant 9)."""
