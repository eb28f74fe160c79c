# The commands the README promises. Each installs what it needs from the lock file first.
.PHONY: install run test lint format bench bench-fanout bench-reminders chaos

UV ?= uv

install:
	$(UV) sync --frozen

run: install
	$(UV) run bookings serve

test: install
	$(UV) run pytest

lint: install
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy

format: install
	$(UV) run ruff check --fix .
	$(UV) run ruff format .

bench: install
	$(UV) run python -m bench

bench-fanout: install
	$(UV) run python -m bench.fanout

bench-reminders: install
	$(UV) run python -m bench.reminders

chaos: install
	$(UV) run python -m chaos
