"""The credentials a log line can quote (a ``/ws`` handshake's above all) come out as ``[redacted]``."""

from __future__ import annotations

import pytest

from bookings.ops.logging import redact

JWT = "eyJhbGciOiJIUzI1NiIsImtpZCI6ImsyIn0.eyJzdWIiOiJ1In0.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        # The websockets library's DEBUG lines for a handshake's headers.
        (
            f"< Sec-WebSocket-Protocol: bookings.v1, bearer.{JWT}",
            "< Sec-WebSocket-Protocol: bookings.v1, bearer.[redacted]",
        ),
        (
            f"< Sec-WebSocket-Protocol: bearer.{JWT}, bookings.v1",
            "< Sec-WebSocket-Protocol: bearer.[redacted], bookings.v1",
        ),
        (
            "< Sec-WebSocket-Protocol: bookings.v1, bearer.not-a-jwt",
            "< Sec-WebSocket-Protocol: bookings.v1, bearer.[redacted]",
        ),
        (f"< Authorization: Bearer {JWT}", "< Authorization: [redacted]"),
        ("< authorization: Basic dXNlcjpwYXNz", "< authorization: [redacted]"),
        # uvicorn's line for a connect, and the request line at DEBUG.
        (
            f'127.0.0.1:1 - "WebSocket /ws?token={JWT}&since=3" [accepted]',
            '127.0.0.1:1 - "WebSocket /ws?token=[redacted]&since=3" [accepted]',
        ),
        (f"< GET /ws?since=3&token={JWT} HTTP/1.1", "< GET /ws?since=3&token=[redacted] HTTP/1.1"),
        # A JWT quoted anywhere else.
        (f"could not decode {JWT}", "could not decode [redacted]"),
    ],
)
def test_credentials_are_redacted(message: str, expected: str) -> None:
    assert redact(message) == expected


@pytest.mark.parametrize(
    "message",
    [
        "> Sec-WebSocket-Protocol: bookings.v1",
        '127.0.0.1:1 - "WebSocket /ws?since=3" [accepted]',
        "Started server process [42]",
        "the bearer of bad news",
    ],
)
def test_everything_else_is_left_alone(message: str) -> None:
    assert redact(message) == message
