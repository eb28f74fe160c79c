# The commands the README promises. Each installs what it needs from the lock file first, and uv itself when it is
# missing: the version below, into .tools/ (gitignored), from PyPI, with the machine's python3. No sudo, nothing global.
.PHONY: tools install install-runtime run test lint format bench bench-fanout bench-reminders bench-contention chaos \
	bench-availability typescript-types smtp-debug

# The one place that pins uv (.ci/run goes through `make tools`).
UV_VERSION := 0.13.9
UV_HOME := $(CURDIR)/.tools/uv-$(UV_VERSION)

# A uv on the PATH (or UV=...) is used as it is; otherwise the pinned one, on the PATH of every recipe too, since
# some tests run `uv` themselves.
ifndef UV
ifneq ($(shell command -v uv 2>/dev/null),)
UV := uv
else
UV := $(UV_HOME)/bin/uv
UV_BOOTSTRAP := $(UV)
export PATH := $(UV_HOME)/bin:$(PATH)
endif
endif

# After an explicit `uv sync`, `uv run` must not sync again: its default would put the dev group back under `make run`.
RUN := $(UV) run --no-sync

# For `make run`: e.g. SERVE_ARGS="--port 8001".
SERVE_ARGS ?=

$(UV_HOME)/bin/uv:
	@echo "uv is not on the PATH: installing uv $(UV_VERSION) into $(UV_HOME)"
	rm -rf "$(UV_HOME)"
	python3 -m venv "$(UV_HOME)" && "$(UV_HOME)/bin/python" -m pip install --quiet "uv==$(UV_VERSION)" \
		|| { rm -rf "$(UV_HOME)" && python3 -m pip install --quiet --target "$(UV_HOME)" "uv==$(UV_VERSION)"; }
	"$@" --version

tools: $(UV_BOOTSTRAP)
	$(UV) --version

# Everything, dev group included: what the tests, the linters and the benchmarks need.
install: $(UV_BOOTSTRAP)
	$(UV) sync --frozen

# What the service needs to run, and nothing else (an exact sync: it removes the dev group if it was there).
install-runtime: $(UV_BOOTSTRAP)
	$(UV) sync --frozen --no-dev

run: install-runtime
	$(RUN) bookings serve $(SERVE_ARGS)

test: install
	$(RUN) pytest

# An SMTP server on loopback that prints every message it receives, for trying mail locally beside `make run`
# (BOOKINGS_SMTP_URL='smtp://127.0.0.1:8025?starttls=false'). A tool environment of its own: `make run` keeps only
# the runtime dependencies in .venv.
SMTP_DEBUG_PORT ?= 8025
smtp-debug: $(UV_BOOTSTRAP)
	PYTHONUNBUFFERED=1 $(UV) tool run --from aiosmtpd==1.4.6 aiosmtpd -n -l 127.0.0.1:$(SMTP_DEBUG_PORT)

lint: install
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy

format: install
	$(RUN) ruff check --fix .
	$(RUN) ruff format .

bench: install
	$(RUN) python -m bench

bench-fanout: install
	$(RUN) python -m bench.fanout

bench-reminders: install
	$(RUN) python -m bench.reminders

bench-contention: install
	$(RUN) python -m bench.contention

bench-availability: install
	$(RUN) python -m bench.availability

chaos: install
	$(RUN) python -m chaos

# The TypeScript client's generated types (clients/typescript/src/schema.ts) from this code's OpenAPI document, after
# an API change: tests/clients fails until they match. npm ci installs the client's lock file.
TS_CLIENT := clients/typescript
typescript-types: install
	cd $(TS_CLIENT) && npm ci --prefer-offline --no-audit --no-fund \
		&& sha256sum package-lock.json | cut -d' ' -f1 > node_modules/.bookings-lock-sha256
	$(RUN) python -m bookings.ops.openapi > $(TS_CLIENT)/openapi.json
	cd $(TS_CLIENT) && node node_modules/openapi-typescript/bin/cli.js openapi.json --output src/schema.ts; \
		status=$$?; rm -f openapi.json; exit $$status
