"""A fault injector: a loopback TCP proxy in front of a real server that loses answers on purpose.

Not a mock. Every request goes to the real server, which processes, commits and answers it. The proxy only
decides, for the first ``times`` requests that a :class:`Drop` rule matches, not to pass the answer on: it
forwards the whole request, waits until it has received the server's *whole* response (so the change is
committed: the server answers after its transaction), and then closes the client's connection without sending a
byte of that response. That is the "forced connection drop after the commit" a client cannot tell apart from a
request that never arrived: httpx sees ``RemoteProtocolError`` (``how="close"``, a FIN) or ``ReadError``
(``how="reset"``, an RST).

Every other exchange is forwarded unchanged, in both directions, and every exchange is recorded
(:attr:`FlakyProxy.exchanges`: method, path, headers and body of both sides, and whether it was dropped), so a
test can check which ``Idempotency-Key`` each attempt carried and whether the server answered it as a replay.

Scope: HTTP/1.1 request/response exchanges, as httpx makes them (one at a time per connection, bodies framed by
``Content-Length`` or chunked); no upgrades (WebSocket), no pipelining, no TLS. It listens on 127.0.0.1 only, on a
free port, and forwards only to the one upstream it was given. Every wait is bounded (``timeout``, per read).
It runs its own event loop in a thread, so blocking and asyncio tests use it alike::

    with FlakyProxy(service.url, [Drop("POST", "/v1/bookings")]) as proxy:
        client = BookingsClient(proxy.url)
"""

from __future__ import annotations

import asyncio
import re
import socket
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal
from urllib.parse import urlsplit

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 8 * 1024 * 1024


@dataclass
class Drop:
    """Lose the answer to the first ``times`` requests with this method and path (a regex matched against the whole
    path, without the query): the server handles them, the client gets no response."""

    method: str
    path: str
    times: int = 1
    how: Literal["close", "reset"] = "close"
    dropped: int = 0

    def take(self, method: str, path: str) -> bool:
        if self.dropped >= self.times or method != self.method or not re.fullmatch(self.path, path):
            return False
        self.dropped += 1
        return True


@dataclass(frozen=True)
class Exchange:
    """One request the proxy forwarded, and the response the server gave it. Header names are lower-case."""

    method: str
    target: str
    request_headers: dict[str, str]
    request_body: bytes
    status: int
    response_headers: dict[str, str]
    response_body: bytes
    dropped: bool

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def replayed(self) -> bool:
        return self.response_headers.get("idempotent-replayed") == "true"


class _Closed(Exception):
    """The peer closed the connection (cleanly, between messages)."""


@dataclass
class _Message:
    head: bytes
    first_line: str
    headers: dict[str, str]
    body: bytes = b""

    @property
    def raw(self) -> bytes:
        return self.head + self.body


@dataclass
class FlakyProxy:
    upstream: str
    rules: Sequence[Drop] = ()
    timeout: float = 30.0
    _exchanges: list[Exchange] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _port: int | None = None
    _thread: threading.Thread | None = None
    _ready: threading.Event = field(default_factory=threading.Event)
    _loop: asyncio.AbstractEventLoop | None = None
    _stopping: asyncio.Event | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _error: BaseException | None = None

    def __post_init__(self) -> None:
        parts = urlsplit(self.upstream)
        if parts.scheme != "http" or parts.hostname not in {"127.0.0.1", "localhost", "::1"} or parts.port is None:
            raise ValueError(f"a loopback http://host:port upstream only, got {self.upstream!r}")
        self._upstream = (parts.hostname, parts.port)

    # -- the test's side ------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._port is not None, "start() the proxy first"
        return f"http://127.0.0.1:{self._port}"

    @property
    def exchanges(self) -> list[Exchange]:
        with self._lock:
            return list(self._exchanges)

    def matching(self, method: str, path: str) -> list[Exchange]:
        """The recorded exchanges with this method and a path that ``path`` (a regex) matches whole."""
        return [e for e in self.exchanges if e.method == method and re.fullmatch(path, e.path)]

    def start(self) -> FlakyProxy:
        self._thread = threading.Thread(target=self._run, name="flaky-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=10) or self._port is None:
            raise RuntimeError(f"the proxy did not start: {self._error!r}")
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        if self._loop is not None and self._stopping is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(timeout=15)
        assert not self._thread.is_alive(), "the proxy did not stop within 15 s"
        self._thread = None

    def __enter__(self) -> FlakyProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- the proxy's thread ---------------------------------------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as error:
            self._error = error
        finally:
            self._ready.set()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _main(self) -> None:
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self._port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await self._stopping.wait()
        finally:
            server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await asyncio.wait_for(server.wait_closed(), timeout=5)

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        upstream: asyncio.StreamWriter | None = None
        try:
            host, port = self._upstream
            upstream_reader, upstream_writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), timeout=self.timeout
            )
            upstream = upstream_writer
            while True:
                request = await self._read_message(client_reader, request=True)
                method, target, _ = request.first_line.split(" ", 2)
                drop = self._rule_for(method, urlsplit(target).path)
                upstream_writer.write(request.raw)
                await asyncio.wait_for(upstream_writer.drain(), timeout=self.timeout)
                response = await self._read_message(upstream_reader, request=False, method=method)
                status = int(response.first_line.split(" ", 2)[1])
                self._record(method, target, request, status, response, dropped=drop is not None)
                if drop is not None:
                    # The server has answered (and committed); the client will never hear of it.
                    if drop.how == "reset":
                        sock = client_writer.get_extra_info("socket")
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        client_writer.transport.abort()
                    return
                client_writer.write(response.raw)
                await asyncio.wait_for(client_writer.drain(), timeout=self.timeout)
                if "close" in response.headers.get("connection", "").lower():
                    return
        except (_Closed, asyncio.IncompleteReadError, ConnectionError, TimeoutError, ValueError, OSError):
            return  # a peer went away, was too slow or spoke something else than HTTP/1.1: end this connection
        finally:
            client_writer.close()
            if upstream is not None:
                upstream.close()
            self._tasks.discard(task)

    def _rule_for(self, method: str, path: str) -> Drop | None:
        with self._lock:
            return next((rule for rule in self.rules if rule.take(method, path)), None)

    def _record(
        self, method: str, target: str, request: _Message, status: int, response: _Message, *, dropped: bool
    ) -> None:
        exchange = Exchange(
            method=method,
            target=target,
            request_headers=request.headers,
            request_body=request.body,
            status=status,
            response_headers=response.headers,
            response_body=_unchunked(response),
            dropped=dropped,
        )
        with self._lock:
            self._exchanges.append(exchange)

    async def _read_message(self, reader: asyncio.StreamReader, *, request: bool, method: str = "") -> _Message:
        """One HTTP/1.1 message, exactly as it came (head and framed body), or ``_Closed`` at a clean end."""
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=self.timeout)
        except asyncio.IncompleteReadError as error:
            if not error.partial:
                raise _Closed from None
            raise
        except asyncio.LimitOverrunError:
            raise ValueError("message head too long") from None
        if len(head) > MAX_HEAD_BYTES:
            raise ValueError("message head too long")
        lines = head.decode("latin-1").split("\r\n")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        message = _Message(head, lines[0], headers)
        status = 0 if request else int(lines[0].split(" ", 2)[1])
        if "chunked" in headers.get("transfer-encoding", "").lower():
            message.body = await self._read_chunked(reader)
        elif "content-length" in headers:
            length = int(headers["content-length"])
            if not 0 <= length <= MAX_BODY_BYTES:
                raise ValueError("body too large")
            message.body = await asyncio.wait_for(reader.readexactly(length), timeout=self.timeout)
        elif not request and not (method == "HEAD" or status in {204, 304} or 100 <= status < 200):
            message.body = await asyncio.wait_for(reader.read(MAX_BODY_BYTES), timeout=self.timeout)  # until EOF
        return message

    async def _read_chunked(self, reader: asyncio.StreamReader) -> bytes:
        raw = bytearray()
        while True:
            size_line = await asyncio.wait_for(reader.readuntil(b"\r\n"), timeout=self.timeout)
            raw += size_line
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while True:  # trailers, up to the empty line
                    trailer = await asyncio.wait_for(reader.readuntil(b"\r\n"), timeout=self.timeout)
                    raw += trailer
                    if trailer == b"\r\n":
                        return bytes(raw)
            if len(raw) + size > MAX_BODY_BYTES:
                raise ValueError("body too large")
            raw += await asyncio.wait_for(reader.readexactly(size + 2), timeout=self.timeout)


def _unchunked(message: _Message) -> bytes:
    """The body's content (a chunked body without its framing)."""
    if "chunked" not in message.headers.get("transfer-encoding", "").lower():
        return message.body
    content, rest = bytearray(), message.body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            break
        content += rest[:size]
        rest = rest[size + 2 :]
    return bytes(content)
