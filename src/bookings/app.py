"""The composition root: builds every part from the settings and wires them into one ASGI app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig

from bookings import __version__
from bookings.auth.dependencies import document_bearer_auth
from bookings.auth.endpoints import router as auth_router
from bookings.availability.endpoints import router as availability_router
from bookings.bookings.endpoints import router as bookings_router
from bookings.calendar.endpoints import router as calendar_router
from bookings.components import build
from bookings.config import Mode, Settings
from bookings.errors import Problem, install_error_handlers
from bookings.events.endpoints import router as events_router
from bookings.jobs.endpoints import router as dead_letters_router
from bookings.kit.openapi import for_generators
from bookings.kit.time import Clock, utc_now
from bookings.mail.endpoints import router as mail_router
from bookings.ops.endpoints import router as metrics_router
from bookings.ops.health import router as health_router
from bookings.ops.heap import startup_objects_frozen
from bookings.ops.logging import configure_logging
from bookings.ops.middleware import RequestContextMiddleware
from bookings.users.endpoints import router as users_router
from bookings.web.endpoints import router as web_router
from bookings.webhooks.endpoints import router as webhooks_router

DESCRIPTION = """
Book time with providers. Users book, providers see what is booked with them, admins see everything.
No provider is ever double-booked. Errors are RFC 9457 problem documents (`application/problem+json`).

Live booking events are a WebSocket at `GET /ws` (resumable with `?since=<event id>`; not listed below, OpenAPI
describes no WebSocket). It takes the access token three ways, preferred first: in `Sec-WebSocket-Protocol`, by
offering the subprotocols `bookings.v1` and `bearer.<access token>` (the server selects `bookings.v1`); an
`Authorization: Bearer` header; or `?token=<access token>`, still accepted but discouraged, since URLs are logged
by proxies. A missing, bad or expired token closes the socket with code `4401`.
"""


# Routes are matched in this order: the busiest first.
ROUTERS = (
    bookings_router,
    health_router,
    auth_router,
    users_router,
    availability_router,
    calendar_router,
    events_router,
    metrics_router,
    webhooks_router,
    dead_letters_router,
    mail_router,
    web_router,
)

NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}


def create_app(settings: Settings | None = None, *, clock: Clock = utc_now) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings.log_level, json=settings.log_json)
    parts = build(settings, clock)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        loops = [parts.relay.run(), parts.hub.run()]
        if settings.mode is Mode.EMBEDDED:  # distributed mode runs jobs in `bookings worker` processes
            loops.append(parts.worker.run())
        background = [asyncio.create_task(loop) for loop in loops]
        with startup_objects_frozen():
            yield
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await parts.close()

    app = FastAPI(
        title="Bookings",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # Answers documented as they are sent (serialization mode): a field with a default is always sent, so
        # required (see kit.schemas.ApiModel). No model is both a body and an answer, so no `-Input` names appear.
        separate_input_output_schemas=True,
        # No OpenTelemetry here (metrics are Prometheus, logs structlog): FastAPI's own telemetry would otherwise
        # look up the global OpenTelemetry providers on every request.
        telemetry=NO_TELEMETRY,
    )
    app.state.settings = settings
    app.state.db = parts.db
    app.state.redis = parts.redis
    app.state.rate_limiter = parts.rate_limiter
    app.state.metrics = parts.metrics
    app.state.auth = parts.auth
    app.state.bookings = parts.bookings
    app.state.hub = parts.hub
    app.state.webhooks = parts.webhooks
    app.state.dead_letters = parts.dead_letters
    app.state.cursors = parts.cursors
    app.state.availability = parts.availability
    app.state.mail_enabled = settings.mail_enabled
    app.state.calendar_feeds = parts.calendar_feeds
    app.state.unsubscribe_tokens = parts.unsubscribe_tokens

    for router in ROUTERS:
        app.include_router(router)
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware, metrics=parts.metrics, max_body_bytes=settings.max_body_bytes)
    _register_problem_schema(app)
    return app


def _register_problem_schema(app: FastAPI) -> None:
    """Add ``Problem`` (and ``FieldError``) to the components that every route's error responses refer to, and
    make the whole document plain for client generators (``kit.openapi``).

    The routes name the schema by reference rather than by model, so that problems are documented only as
    ``application/problem+json``, the one media type they are sent with.
    """
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:  # built once: FastAPI's own (which it caches here too), then ours
            schema = original()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(problem.pop("$defs", {}))
            components["Problem"] = problem
            document_bearer_auth(schema, ROUTERS)
            app.openapi_schema = for_generators(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
