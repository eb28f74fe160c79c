"""The SDK on its own: installed with pip into a fresh virtualenv, driving a real server through a booking's life."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import Service
from tests.sdk.conftest import SDK

SCRIPTS = Path(__file__).parent / "scripts"


def run_in_venv(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(python), *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result


def test_the_sdk_alone_books_lists_reschedules_and_cancels(sdk_venv: Path, sdk_service: Service) -> None:
    report = json.loads(run_in_venv(sdk_venv, str(SCRIPTS / "lifecycle.py"), sdk_service.url).stdout)

    assert not report["service_importable"], "the fresh venv must hold the SDK only, not the service"
    assert str(sdk_venv.parent.parent) in report["sdk_file"], "the SDK must come from the venv, not this checkout"
    created = report["created"]
    assert created["status"] == "confirmed"
    assert created["notes"] == "hello"
    assert created["id"] in report["listed"]["ids"]
    assert report["rescheduled"]["same_instant"]
    assert report["rescheduled"]["start"].endswith("+00:00")
    assert report["conflict"] == {
        "status": 409,
        "title": "Slot taken",
        "detail": "The provider already has a booking that overlaps this time.",
        "is_bookings_error": True,
    }
    assert report["naive"] is not None
    assert "timezone-aware" in report["naive"]
    assert report["cancelled"] == {"status": "cancelled", "reason": "changed my mind"}
    assert report["fetched"] == "cancelled"


def test_the_quickstart_example_runs(sdk_venv: Path, sdk_service: Service) -> None:
    output = run_in_venv(sdk_venv, str(SDK / "examples" / "quickstart.py"), sdk_service.url).stdout
    steps = [json.loads(line)["step"] for line in output.splitlines()]
    assert steps[:7] == ["signed_in", "created", "listed", "conflict", "invalid", "rescheduled", "cancelled"]
    assert "event" in steps
