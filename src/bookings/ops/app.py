"""The operations endpoints alone (health and metrics), for processes that serve no API: ``bookings worker``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import redis.asyncio as aioredis
import uvicorn
from fastapi import FastAPI

from bookings.db import Database
from bookings.errors import install_error_handlers
from bookings.ops.endpoints import router as metrics_router
from bookings.ops.health import router as health_router
from bookings.ops.metrics import Metrics


def create_ops_app(db: Database, redis: aioredis.Redis | None, metrics: Metrics, *, mail_enabled: bool) -> FastAPI:
    """``/health``, ``/health/live``, ``/health/ready``, ``/metrics`` and ``/metrics.prom``, nothing else."""
    app = FastAPI(title="Bookings worker", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.db = db
    app.state.redis = redis
    app.state.metrics = metrics
    app.state.mail_enabled = mail_enabled
    app.include_router(health_router)
    app.include_router(metrics_router)
    install_error_handlers(app)
    return app


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server run as one task among others: the process that hosts it handles the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def ops_server(app: FastAPI, *, host: str, port: int, log_level: str) -> EmbeddedServer:
    config = uvicorn.Config(app, host=host, port=port, access_log=False, log_level=log_level.lower(), lifespan="off")
    return EmbeddedServer(config)
