"""Sending one message over SMTP (aiosmtplib), and what its failures mean for the job that sends it.

``smtp://user:password@host:587`` speaks STARTTLS and refuses to go on without it, unless ``?starttls=false``;
``smtps://host:465`` is TLS from the first byte. A ``4xx`` reply or a failed connection is worth another attempt; a
``5xx`` reply is the server's final word (a refused recipient, a message it will never take), so the job is dead at
once and waits in the dead letters for an admin.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from bookings.jobs.worker import JobFailed


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    hostname: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool
    start_tls: bool

    @classmethod
    def parse(cls, url: str) -> SmtpTarget:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("an SMTP URL is smtp://[user:password@]host[:port] or smtps://...")
        query = parse_qs(parts.query)
        starttls = query.get("starttls", ["true"])[-1].lower() not in ("false", "0", "no")
        implicit = parts.scheme == "smtps"
        return cls(
            hostname=parts.hostname,
            port=parts.port or (465 if implicit else 587),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            use_tls=implicit,
            start_tls=starttls and not implicit,
        )


class SmtpMailer:
    def __init__(self, target: SmtpTarget, *, timeout_seconds: float, tls: ssl.SSLContext | None = None) -> None:
        self._target = target
        self._timeout = timeout_seconds
        self._tls = tls or ssl.create_default_context()

    async def send(self, message: EmailMessage) -> None:
        """Deliver ``message`` to its recipients, or raise ``JobFailed`` (``permanent`` for a ``5xx`` reply)."""
        target = self._target
        try:
            await aiosmtplib.send(
                message,
                hostname=target.hostname,
                port=target.port,
                username=target.username,
                password=target.password,
                use_tls=target.use_tls,
                start_tls=target.start_tls,
                tls_context=self._tls,
                timeout=self._timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            replies = [(r.code, r.message) for r in exc.recipients]
            permanent = all(500 <= code < 600 for code, _ in replies)
            raise JobFailed(f"SMTP refused the recipients: {replies}", permanent=permanent) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise JobFailed(f"SMTP {exc.code}: {exc.message}", permanent=500 <= exc.code < 600) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:  # no connection, a timeout, TLS refused or missing
            raise JobFailed(f"{type(exc).__name__}: {exc}") from exc
