"""A real SMTP server on loopback (aiosmtpd, in a thread of the test process) that keeps what it is sent.

It can be told to refuse the next messages with a reply of the test's choosing (``refuse``), to take a message and
keep its reply back (``hold``: the sender waits for a ``250`` that comes only on ``release``), and to go away and
come back on the same port (``stop``/``start``).
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.support.servers import free_port


@dataclass(frozen=True)
class Received:
    recipients: tuple[str, ...]
    message: EmailMessage

    @property
    def to(self) -> str:
        return self.recipients[0]

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])

    def part(self, content_type: str) -> str:
        for part in self.message.walk():
            if part.get_content_type() == content_type:
                text: str = part.get_content()
                return text
        raise AssertionError(f"no {content_type} part")


@dataclass
class _Handler:
    received: list[Received] = field(default_factory=list)
    attempts: list[tuple[str, str]] = field(default_factory=list)  # (Message-ID, reply) of every DATA
    refusals: list[str] = field(default_factory=list)
    holding: bool = False
    released: threading.Event = field(default_factory=threading.Event)
    held: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, _server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        with self.lock:
            reply = self.refusals.pop(0) if self.refusals else "250 2.0.0 OK"
            self.attempts.append((str(message["Message-ID"]), reply))
            if not reply.startswith("250"):
                return reply
            self.received.append(Received(tuple(envelope.rcpt_tos), message))
            hold = self.holding
            if hold:
                self.held += 1
        if hold:  # wait for ``release``, off the server's event loop (other sessions go on meanwhile)
            await asyncio.get_running_loop().run_in_executor(None, self.released.wait)
        return reply


class SmtpServer:
    def __init__(self, *, tls: ssl.SSLContext | None = None, require_starttls: bool = False) -> None:
        self.port = free_port()
        self._handler = _Handler()
        self._tls = tls
        self._require_starttls = require_starttls
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        """What ``BOOKINGS_SMTP_URL`` is set to: no TLS, unless this server offers it."""
        return f"smtp://127.0.0.1:{self.port}" + ("" if self._tls else "?starttls=false")

    def start(self) -> SmtpServer:
        kwargs: dict[str, Any] = {}
        if self._tls is not None:
            kwargs = {"tls_context": self._tls, "require_starttls": self._require_starttls}
        self._controller = Controller(
            self._handler, hostname="127.0.0.1", port=self.port, server_hostname="localhost", **kwargs
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def refuse(self, *replies: str) -> None:
        """Answer the next ``len(replies)`` messages with these replies instead of ``250``."""
        with self._handler.lock:
            self._handler.refusals.extend(replies)

    def hold(self) -> None:
        with self._handler.lock:
            self._handler.released.clear()
            self._handler.holding = True

    def release(self) -> None:
        with self._handler.lock:
            self._handler.holding = False
            self._handler.released.set()

    @property
    def held(self) -> int:
        return self._handler.held

    @property
    def attempts(self) -> list[tuple[str, str]]:
        with self._handler.lock:
            return list(self._handler.attempts)

    def to(self, address: str) -> list[Received]:
        with self._handler.lock:
            return [r for r in self._handler.received if address in r.recipients]

    def wait_for(self, check: Callable[[], bool], timeout: float = 20.0, what: str = "mail") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}")
