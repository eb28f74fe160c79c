"""The fan-out benchmark's WebSocket clients: one asyncio process (on uvloop) holding many ``/ws`` connections and
noting when each event arrives.

It runs apart from the bench process, which sends the HTTP load, so that the clients' receive times are not
delayed by the load generator's own work (and its CPU is counted on its own). The two talk over the child's
stdin and stdout, one JSON object per line:

- in: ``{"sockets": [[key, url, token], ...], "parallel": 50, "compression": true, "out": "<path>"}``; out, once
  every socket has connected or failed: ``{"connected": n, "failed": n, "error": "...", "seconds": s,
  "extensions": "..."}``
- in: ``{"cmd": "mark"}`` when the load starts (the loop lag is measured from then on); out: ``{"marked": n}``
- in: ``{"cmd": "drain", "expected": n, "timeout": s}``: wait until ``n`` events have arrived in all (or the
  timeout), write the receipts ``[[key, event id, latency ms], ...]`` to ``out``; out: counts and loop lag
- in: ``{"cmd": "close"}`` (or end of input): close every socket and exit.

Each socket presents its access token as ``/ws`` prefers, in ``Sec-WebSocket-Protocol``: it offers the
subprotocols ``bookings.v1`` and ``bearer.<token>`` (the server selects ``bookings.v1``), so the token stays out of
the URL.

The latency of a receipt is the wall clock when the message was read minus its ``occurredAt``, both on this
machine's clock. A ticker measures how late the event loop runs timers: if it lags, the clients are the
bottleneck and the latencies are theirs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from bench.config import PROJECT_DIR

CONNECT_TIMEOUT_S = 30.0
TICK_S = 0.01
SUBPROTOCOL = "bookings.v1"  # what the server selects; the ``bearer.`` entry beside it carries the token


def _occurred(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def subprotocols(token: str) -> list[Subprotocol]:
    """What a socket offers: ``bookings.v1`` and ``bearer.<access token>``."""
    return [Subprotocol(SUBPROTOCOL), Subprotocol(f"bearer.{token}")]


class Clients:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.sockets: list[tuple[int, str, str]] = [(int(k), str(u), str(t)) for k, u, t in spec["sockets"]]
        self.parallel = int(spec.get("parallel", 50))
        self.compression = bool(spec.get("compression", True))
        self.out = Path(spec["out"])
        self.conns: dict[int, ClientConnection] = {}
        self.readers: list[asyncio.Task[None]] = []
        self.receipts: list[tuple[int, int, float]] = []
        self.closed: Counter[str] = Counter()
        self.errors: list[str] = []
        self.expected = 0
        self.enough = asyncio.Event()
        self.lags: list[float] = []

    async def open(self) -> dict[str, Any]:
        gate = asyncio.Semaphore(self.parallel)
        started = time.perf_counter()

        async def one(key: int, url: str, token: str) -> None:
            async with gate:
                try:
                    conn = await connect(
                        url,
                        subprotocols=subprotocols(token),
                        ping_interval=None,  # the server pings every 20 s; a browser does not ping on its own
                        open_timeout=CONNECT_TIMEOUT_S,
                        close_timeout=2,
                        compression="deflate" if self.compression else None,
                        max_size=2**20,
                    )
                except Exception as exc:  # refused, timed out, closed at once (4401): counted, not raised
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                    return
                if conn.subprotocol != SUBPROTOCOL:
                    self.errors.append(f"the server selected the subprotocol {conn.subprotocol!r}, not {SUBPROTOCOL}")
                    await conn.close()
                    return
                self.conns[key] = conn
                self.readers.append(asyncio.create_task(self.read(key, conn)))

        await asyncio.gather(*(one(key, url, token) for key, url, token in self.sockets))
        extensions = ""
        if self.conns:
            first = next(iter(self.conns.values()))
            if first.response is not None:
                extensions = first.response.headers.get("Sec-WebSocket-Extensions", "")
        return {
            "connected": len(self.conns),
            "failed": len(self.errors),
            "error": self.errors[0][:300] if self.errors else "",
            "seconds": time.perf_counter() - started,
            "extensions": extensions,
        }

    async def read(self, key: int, conn: ClientConnection) -> None:
        receipts = self.receipts
        try:
            async for raw in conn:
                now = time.time()
                message = json.loads(raw)
                if "id" not in message:  # stream.ready: where the stream starts, not an event
                    continue
                receipts.append((key, int(message["id"]), (now - _occurred(message["occurredAt"])) * 1000.0))
                if self.expected and len(receipts) >= self.expected:
                    self.enough.set()
        except ConnectionClosed:
            pass
        self.closed[str(conn.close_code)] += 1

    async def tick(self) -> None:
        """How late the loop wakes a sleeper, every 10 ms: the clients' own delay on every receipt."""
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(TICK_S)
            self.lags.append(max(0.0, loop.time() - before - TICK_S) * 1000.0)

    async def drain(self, expected: int, within: float) -> dict[str, Any]:
        self.expected = expected
        if len(self.receipts) >= expected:
            self.enough.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self.enough.wait()
        await asyncio.sleep(0.5)  # anything beyond the expected (duplicates, strays) arrives now
        self.out.write_text(json.dumps(self.receipts, separators=(",", ":")))
        lags = sorted(self.lags)
        return {
            "received": len(self.receipts),
            "open": sum(1 for conn in self.conns.values() if conn.close_code is None),
            "closed": dict(self.closed),
            "lag_p99_ms": lags[min(len(lags) - 1, round(0.99 * (len(lags) - 1)))] if lags else 0.0,
            "lag_max_ms": lags[-1] if lags else 0.0,
        }

    async def close(self) -> None:
        await asyncio.gather(*(conn.close() for conn in self.conns.values()), return_exceptions=True)
        for task in self.readers:
            task.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)


class Fleet:
    """The bench's side: starts ``python -m bench.wsclients`` and drives it."""

    def __init__(self, sockets: list[tuple[int, str, str]], out: Path, log: Path, *, compression: bool = True) -> None:
        self.sockets = sockets
        self.out = out
        self.log_path = log
        self.compression = compression
        self._process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    async def start(self, parallel: int = 50) -> dict[str, Any]:
        with self.log_path.open("ab") as log:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.wsclients",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                cwd=PROJECT_DIR,
            )
        spec = {"sockets": self.sockets, "parallel": parallel, "compression": self.compression, "out": str(self.out)}
        return await self._ask(spec, CONNECT_TIMEOUT_S + 30)

    async def mark(self) -> dict[str, Any]:
        return await self._ask({"cmd": "mark"}, 10)

    async def drain(self, expected: int, within: float) -> tuple[dict[str, Any], list[tuple[int, int, float]]]:
        """Wait (at most ``within`` s) for ``expected`` receipts in all; every receipt, as (key, id, ms)."""
        summary = await self._ask({"cmd": "drain", "expected": expected, "timeout": within}, within + 30)
        receipts = [(int(k), int(i), float(ms)) for k, i, ms in json.loads(self.out.read_text())]
        return summary, receipts

    async def close(self) -> None:
        process = self._process
        if process is None:
            return
        self._process = None
        if process.returncode is None:
            try:
                assert process.stdin is not None
                process.stdin.write(b'{"cmd": "close"}\n')
                await process.stdin.drain()
                process.stdin.close()
                await asyncio.wait_for(process.wait(), 20)
            except (OSError, TimeoutError, ConnectionError):
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()

    async def _ask(self, message: dict[str, Any], within: float) -> dict[str, Any]:
        process = self._process
        assert process is not None
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.write(json.dumps(message).encode() + b"\n")
        await process.stdin.drain()
        line = await asyncio.wait_for(process.stdout.readline(), within)
        if not line:
            raise RuntimeError(f"the WebSocket clients exited; see {self.log_path}")
        answer: dict[str, Any] = json.loads(line)
        return answer


def _say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def _line() -> str:
    return await asyncio.to_thread(sys.stdin.readline)


async def main() -> None:
    first = await _line()
    if not first:
        return
    clients = Clients(json.loads(first))
    ticker: asyncio.Task[None] | None = None
    try:
        _say(await clients.open())
        ticker = asyncio.create_task(clients.tick())
        while line := await _line():
            command = json.loads(line)
            if command["cmd"] == "mark":  # the load starts: loop lag counts from here
                clients.lags.clear()
                _say({"marked": len(clients.receipts)})
            elif command["cmd"] == "drain":
                _say(await clients.drain(int(command["expected"]), float(command["timeout"])))
            elif command["cmd"] == "close":
                break
    finally:
        if ticker is not None:
            ticker.cancel()
        await clients.close()
        _say({"bye": True})


def run() -> None:
    factory: Callable[[], asyncio.AbstractEventLoop]
    try:
        import uvloop  # the event loop uvicorn[standard] brings; plain asyncio if it is missing

        factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover
        factory = asyncio.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main())


if __name__ == "__main__":
    run()
