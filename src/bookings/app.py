"""The composition root: builds every part from the settings and wires them into one ASGI app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import redis.asyncio as aioredis
from fastapi import FastAPI

from bookings import __version__
from bookings.auth.endpoints import router as auth_router
from bookings.auth.keyring import KeyRing
from bookings.auth.passwords import PasswordHasher
from bookings.auth.service import AuthService
from bookings.bookings.endpoints import router as bookings_router
from bookings.bookings.service import BookingService
from bookings.config import Settings
from bookings.db import Database
from bookings.errors import Problem, install_error_handlers
from bookings.events.bus import bus_from_settings
from bookings.events.coordination import coordinator_from_settings
from bookings.events.endpoints import router as events_router
from bookings.events.hub import Hub
from bookings.events.outbox import Outbox
from bookings.events.relay import Relay
from bookings.kit.time import Clock, utc_now
from bookings.ops.endpoints import router as metrics_router
from bookings.ops.health import router as health_router
from bookings.ops.logging import configure_logging
from bookings.ops.metrics import Metrics
from bookings.ops.middleware import RequestContextMiddleware
from bookings.users.endpoints import router as users_router
from bookings.web.endpoints import router as web_router

DESCRIPTION = """
Book time with providers. Users book, providers see what is booked with them, admins see everything.
No provider is ever double-booked. Errors are RFC 9457 problem documents (`application/problem+json`).
"""


def create_app(settings: Settings | None = None, *, clock: Clock = utc_now) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings.log_level, json=settings.log_json)
    metrics = Metrics()
    db = Database(settings)
    redis_client = aioredis.from_url(settings.redis_url) if settings.redis_url else None
    coordinator = coordinator_from_settings(settings)
    bus = bus_from_settings(settings)
    outbox = Outbox(coordinator, fault_kill_after_commit=settings.fault_kill_after_commit)
    relay = Relay(
        db,
        bus,
        coordinator,
        metrics,
        clock,
        poll_seconds=settings.relay_poll_seconds,
        retention=timedelta(days=settings.event_retention_days),
    )
    hub = Hub(bus, metrics)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        background = [asyncio.create_task(relay.run(), name="relay"), asyncio.create_task(hub.run(), name="hub")]
        yield
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await relay.close()
        await bus.close()
        await db.dispose()
        if redis_client is not None:
            await redis_client.aclose()

    app = FastAPI(
        title="Bookings",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        separate_input_output_schemas=False,
    )
    app.state.settings = settings
    app.state.db = db
    app.state.redis = redis_client
    app.state.metrics = metrics
    app.state.auth = AuthService(settings, KeyRing.from_settings(settings), PasswordHasher(settings), metrics, clock)
    app.state.bookings = BookingService(settings, outbox, metrics, clock)
    app.state.hub = hub
    app.state.relay = relay

    for router in (
        auth_router,
        users_router,
        bookings_router,
        events_router,
        health_router,
        metrics_router,
        web_router,
    ):
        app.include_router(router)
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware, metrics=metrics, max_body_bytes=settings.max_body_bytes)
    _register_problem_schema(app)
    return app


def _register_problem_schema(app: FastAPI) -> None:
    """Add ``Problem`` (and ``FieldError``) to the components that every route's error responses refer to.

    The routes name the schema by reference rather than by model, so that problems are documented only as
    ``application/problem+json``, the one media type they are sent with.
    """
    original = app.openapi

    def openapi() -> dict[str, Any]:
        schema = original()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(problem.pop("$defs", {}))
        components["Problem"] = problem
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
