"""The password policy names every rule a password breaks."""

from __future__ import annotations

import pytest

from bookings.auth.passwords import policy_violations


@pytest.mark.parametrize(
    ("password", "broken"),
    [
        ("Sh0rt!", {"password_too_short"}),
        ("nouppercase1!", {"password_missing_uppercase"}),
        ("NOLOWERCASE1!", {"password_missing_lowercase"}),
        ("NoDigitsHere!", {"password_missing_digit"}),
        ("NoSpecial123", {"password_missing_special"}),
        ("with space 1A", {"password_missing_special"}),
        (
            "a",
            {"password_too_short", "password_missing_uppercase", "password_missing_digit", "password_missing_special"},
        ),
        ("A1!" + "a" * 200, {"password_too_long"}),
        ("Correct-Horse-9", set()),
        ("Ünïcode-Pässw0rd", set()),
    ],
)
def test_policy_violations(password: str, broken: set[str]) -> None:
    assert {e.type for e in policy_violations(password)} == broken
