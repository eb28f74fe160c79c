# syntax=docker/dockerfile:1
# Bookings API and worker image. Build: docker build -t bookings:local .
# Run (embedded mode, SQLite in the /data volume): docker run -p 8000:8000 -v bookings-data:/data bookings:local
# Distributed mode: see docker-compose.yml (PostgreSQL, Redis, migrate, 2 API replicas, worker, nginx).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9

FROM ${UV_IMAGE} AS uv

# ---- builder: the locked dependencies and the project, into /app/.venv ----------------------------------------
FROM ${PYTHON_IMAGE} AS builder
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# Dependencies first (only the lock file and pyproject.toml), so that a code change reuses this layer.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project
# Then the project itself, installed as a wheel (not editable): the runtime image needs no source tree.
COPY README.md ./
COPY src ./src
RUN uv sync --frozen --no-dev --no-editable

# ---- runtime: the virtual environment and nothing else, as a non-root user ------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 bookings \
    && useradd --system --uid 10001 --gid bookings --home-dir /data --no-create-home --shell /usr/sbin/nologin bookings \
    && mkdir /data \
    && chown bookings:bookings /data
COPY --from=builder /app/.venv /app/.venv
ENV PATH="/app/.venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# Embedded mode keeps ./bookings.db (and its .keys file) here; distributed mode writes nothing locally.
WORKDIR /data
USER 10001:10001
EXPOSE 8000
# The slim image has no curl: the standard library asks the liveness endpoint instead.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/live', timeout=2)"]
CMD ["bookings", "serve", "--host", "0.0.0.0", "--port", "8000"]
