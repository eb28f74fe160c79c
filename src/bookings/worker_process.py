"""``bookings worker``: the job worker as a process of its own, stopped cleanly by SIGTERM or SIGINT.

At the edge beside ``cli.py``, since it builds the whole service (``components.build``): the jobs package itself
knows no domain.

Given an HTTP port, it also serves its health and Prometheus metrics there (the jobs it runs are counted only in
this process, so this is where Prometheus scrapes them).
"""

from __future__ import annotations

import asyncio
import signal

from bookings.components import build
from bookings.config import Settings
from bookings.kit.time import utc_now
from bookings.ops.app import create_ops_app, ops_server
from bookings.ops.logging import configure_logging


async def run_worker(settings: Settings, *, http_host: str = "127.0.0.1", http_port: int | None = None) -> None:
    configure_logging(settings.log_level, json=settings.log_json)
    parts = build(settings, utc_now)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = None
    if http_port is not None:
        app = create_ops_app(parts.db, parts.redis, parts.metrics, mail_enabled=settings.mail_enabled)
        server = ops_server(app, host=http_host, port=http_port, log_level=settings.log_level)
    tasks = [asyncio.create_task(parts.worker.run())]
    if server is not None:
        tasks.append(asyncio.create_task(server.serve()))
    stopping = asyncio.create_task(stop.wait())
    try:
        # Runs until a signal, or until a part ends on its own (the HTTP port was taken, say): then all stop.
        await asyncio.wait([stopping, *tasks], return_when=asyncio.FIRST_COMPLETED)
    finally:
        if server is not None:
            server.should_exit = True
        for task in (stopping, tasks[0]):
            task.cancel()
        results = await asyncio.gather(stopping, *tasks, return_exceptions=True)
        await parts.close()
    failures = [r for r in results if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError)]
    if failures:
        raise failures[0]
