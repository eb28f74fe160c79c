"""The ``bookings`` command: serve, migrate, create-admin."""

from __future__ import annotations

import asyncio
import os
import tempfile
from typing import Annotated

import typer
import uvicorn

from bookings import migrate as migrations
from bookings.config import Mode, Settings
from bookings.ops.logging import configure_logging
from bookings.worker_process import run_worker

cli = typer.Typer(help="Bookings: book time with providers, never double-booked.", no_args_is_help=True)


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (distributed mode).")] = 1,
) -> None:
    """Serve the API. Embedded mode (the default, SQLite) applies migrations first."""
    settings = Settings()
    if settings.mode is Mode.EMBEDDED:
        if workers > 1:
            raise typer.BadParameter("embedded mode runs one process; use PostgreSQL for --workers > 1")
        migrations.upgrade(settings)
    if workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="bookings-metrics-")
    configure_logging(settings.log_level, json=settings.log_json)  # the supervisor's own lines too
    uvicorn.run(
        "bookings.asgi:app",
        log_config=None,  # each worker logs through configure_logging (create_app), never uvicorn's format
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        proxy_headers=True,
        ws_ping_interval=settings.ws_ping_seconds,
        # Events are small JSON; per-connection compression state would double an idle socket's memory.
        ws_per_message_deflate=False,
        ws_ping_timeout=settings.ws_ping_seconds,
        log_level=settings.log_level.lower(),
        # A worker answers its supervisor's pings only once its imports are done: on a busy machine that takes
        # longer than uvicorn's default 5 s, and the supervisor would kill and restart it, over and over.
        timeout_worker_healthcheck=30,
    )


@cli.command()
def worker(
    concurrency: Annotated[int | None, typer.Option(min=1, help="Jobs run at once (default: settings).")] = None,
    http_port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Serve /health and /metrics.prom on this port (default: none).")
    ] = None,
    http_host: Annotated[str, typer.Option(help="Interface for --http-port.")] = "127.0.0.1",
) -> None:
    """Run background jobs (reminders, webhook deliveries). Distributed mode: run as many as you like."""
    settings = Settings()
    if settings.mode is Mode.EMBEDDED:
        raise typer.BadParameter("embedded mode runs jobs inside `bookings serve`; a worker needs PostgreSQL")
    if concurrency is not None:
        settings = settings.model_copy(update={"worker_concurrency": concurrency})
    asyncio.run(run_worker(settings, http_host=http_host, http_port=http_port))


@cli.command()
def migrate(
    revision: Annotated[str, typer.Argument(help="Target revision (default: the latest).")] = "head",
    down: Annotated[bool, typer.Option("--down", help="Downgrade to REVISION instead.")] = False,
) -> None:
    """Apply (or roll back) database migrations."""
    settings = Settings()
    if down:
        migrations.downgrade(settings, revision)
    else:
        migrations.upgrade(settings, revision)
    typer.echo(f"database at {revision}")


@cli.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(help="The admin's email.")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, help="Meets the password policy.")],
    name: Annotated[str, typer.Option(help="Display name.")] = "Admin",
) -> None:
    """Create an admin account (the API never makes admins)."""
    from bookings.admin import create_admin as make

    settings = Settings()
    if settings.mode is Mode.EMBEDDED:
        migrations.upgrade(settings)
    try:
        user_id = asyncio.run(make(settings, email=email, password=password, name=name))
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    typer.echo(f"admin {email} created with id {user_id}")


def main() -> None:
    cli()
