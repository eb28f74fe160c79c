"""``/health``, ``/health/live``, ``/health/ready``: is this instance alive, and can it reach what it needs?"""

from __future__ import annotations

import asyncio
import time
from typing import Literal

import redis.asyncio as aioredis
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy import text

from bookings.db import Database

CHECK_TIMEOUT_SECONDS = 2.0

router = APIRouter(tags=["operations"])


class Check(BaseModel):
    status: Literal["ok", "fail", "disabled"]
    latencyMs: float | None = None
    error: str | None = None


class Health(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "ok",
                    "checks": {
                        "database": {"status": "ok", "latencyMs": 0.9},
                        "redis": {"status": "ok", "latencyMs": 0.4},
                        "mail": {"status": "ok"},
                    },
                },
                {
                    "status": "fail",
                    "checks": {
                        "database": {"status": "fail", "error": "OperationalError"},
                        "redis": {"status": "disabled"},
                        "mail": {"status": "disabled"},
                    },
                },
            ]
        }
    )

    status: Literal["ok", "fail"]
    checks: dict[str, Check]


async def _timed(probe: asyncio.Future[object] | object) -> Check:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            await probe  # type: ignore[misc]
    except Exception as exc:  # any failure of the dependency is a failed check, never an error response
        return Check(status="fail", error=type(exc).__name__)
    return Check(status="ok", latencyMs=round((time.perf_counter() - started) * 1000, 2))


async def _database(db: Database) -> None:
    async with db.reader.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def check_all(request: Request) -> Health:
    db: Database = request.app.state.db
    redis_client: aioredis.Redis | None = request.app.state.redis
    checks = {"database": await _timed(_database(db))}
    checks["redis"] = await _timed(redis_client.ping()) if redis_client else Check(status="disabled")
    # Mail is sent by jobs, which retry and dead-letter: an SMTP outage never makes an instance unhealthy, so the
    # check only says whether mail is configured.
    checks["mail"] = Check(status="ok" if request.app.state.mail_enabled else "disabled")
    healthy = all(c.status != "fail" for c in checks.values())
    return Health(status="ok" if healthy else "fail", checks=checks)


def _respond(health: Health) -> JSONResponse:
    return JSONResponse(health.model_dump(exclude_none=True), status_code=200 if health.status == "ok" else 503)


@router.get(
    "/health",
    operation_id="getHealth",
    summary="Health of this instance and its dependencies",
    response_model=Health,
    responses={503: {"model": Health, "description": "A dependency is failing."}},
)
async def health(request: Request) -> JSONResponse:
    return _respond(await check_all(request))


@router.get("/health/live", operation_id="getLiveness", summary="The process is up", response_model=Health)
async def live() -> JSONResponse:
    return _respond(Health(status="ok", checks={}))


@router.get(
    "/health/ready",
    operation_id="getReadiness",
    summary="The instance can serve traffic (its dependencies answer)",
    response_model=Health,
    responses={503: {"model": Health, "description": "Not ready: a dependency is failing."}},
)
async def ready(request: Request) -> JSONResponse:
    return _respond(await check_all(request))
