"""``bookings worker``: the job worker as a process of its own, stopped cleanly by SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import signal

from bookings.components import build
from bookings.config import Settings
from bookings.kit.time import utc_now
from bookings.ops.logging import configure_logging


async def run_worker(settings: Settings) -> None:
    configure_logging(settings.log_level, json=settings.log_json)
    parts = build(settings, utc_now)
    task = asyncio.create_task(parts.worker.run())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        await parts.close()
