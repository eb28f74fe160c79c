"""A fault-injection run of the distributed service: load, SIGKILLs and an emptied Redis, then checks (issue 13)."""
