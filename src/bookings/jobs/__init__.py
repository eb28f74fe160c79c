"""Durable background jobs: rows written in the caller's transaction, claimed with leases, retried, dead-lettered.

The domain code says what is due and what to do (``schedule``, a handler per kind); this package does the rest.
"""
