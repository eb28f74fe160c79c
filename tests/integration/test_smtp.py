"""The SMTP client against a real SMTP server on loopback: TLS when asked for, never silently without it, and
what each kind of failure means for the job (retry, or dead at once)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest
import trustme

from bookings.jobs.worker import JobFailed
from bookings.mail.smtp import SmtpMailer, SmtpTarget
from tests.support.smtp_server import SmtpServer


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_server(ca: trustme.CA) -> Iterator[SmtpServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    server = SmtpServer(tls=context, require_starttls=True).start()
    yield server
    server.stop()


@pytest.fixture
def plain_server() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


def _message(to: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "bookings@clinic.test"
    message["To"] = to
    message["Subject"] = "Booked"
    message["Message-ID"] = f"<test.{datetime.now(UTC).timestamp()}@clinic.test>"
    message.set_content("Hello")
    return message


def _trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def test_urls_name_the_transport() -> None:
    assert SmtpTarget.parse("smtp://ada:p%40ss@mail.example.com") == SmtpTarget(
        "mail.example.com", 587, "ada", "p@ss", use_tls=False, start_tls=True
    )
    assert SmtpTarget.parse("smtps://mail.example.com") == SmtpTarget(
        "mail.example.com", 465, None, None, use_tls=True, start_tls=False
    )
    plain = SmtpTarget.parse("smtp://127.0.0.1:2525?starttls=false")
    assert (plain.port, plain.use_tls, plain.start_tls) == (2525, False, False)
    with pytest.raises(ValueError, match="SMTP URL"):
        SmtpTarget.parse("http://mail.example.com")


async def test_starttls_is_spoken_and_the_certificate_checked(tls_server: SmtpServer, ca: trustme.CA) -> None:
    target = SmtpTarget.parse(f"smtp://127.0.0.1:{tls_server.port}")
    await SmtpMailer(target, timeout_seconds=10, tls=_trusting(ca)).send(_message("ada@example.com"))
    assert len(tls_server.to("ada@example.com")) == 1  # the server requires STARTTLS: it took the message

    untrusted = SmtpMailer(target, timeout_seconds=10, tls=ssl.create_default_context())
    with pytest.raises(JobFailed) as failed:
        await untrusted.send(_message("eve@example.com"))
    assert not failed.value.permanent  # worth another attempt once the certificate is fixed
    assert tls_server.to("eve@example.com") == []


async def test_no_starttls_on_offer_sends_nothing_unless_the_url_says_so(plain_server: SmtpServer) -> None:
    required = SmtpMailer(SmtpTarget.parse(f"smtp://127.0.0.1:{plain_server.port}"), timeout_seconds=10)
    with pytest.raises(JobFailed, match="TLS"):
        await required.send(_message("ada@example.com"))
    assert plain_server.to("ada@example.com") == []
    allowed = SmtpMailer(SmtpTarget.parse(plain_server.url), timeout_seconds=10)
    await allowed.send(_message("ada@example.com"))
    assert len(plain_server.to("ada@example.com")) == 1


async def test_a_4xx_is_retried_a_5xx_is_final_and_no_server_is_retried(plain_server: SmtpServer) -> None:
    mailer = SmtpMailer(SmtpTarget.parse(plain_server.url), timeout_seconds=10)
    plain_server.refuse("451 4.3.0 Try again later")
    with pytest.raises(JobFailed, match="451") as later:
        await mailer.send(_message("ada@example.com"))
    assert not later.value.permanent
    plain_server.refuse("554 5.7.1 Rejected")
    with pytest.raises(JobFailed, match="554") as final:
        await mailer.send(_message("ada@example.com"))
    assert final.value.permanent
    plain_server.stop()
    with pytest.raises(JobFailed) as down:
        await mailer.send(_message("ada@example.com"))
    assert not down.value.permanent
