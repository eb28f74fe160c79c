"""The README does not lie: its defaults start the service, and its curl walkthrough works against it."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.servers import ServerProcess

README = Path(__file__).resolve().parents[2] / "README.md"


def _curl_walkthrough(heading: str = "### With curl") -> str:
    text = README.read_text()
    section = text.split(heading, 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, f"the README's {heading!r} block is missing"
    return match.group(1)


@pytest.fixture(scope="module")
def embedded_default(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path]]:
    """``bookings serve`` with no configuration at all, in an empty directory, as a newcomer would run it."""
    workdir = tmp_path_factory.mktemp("newcomer")
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("BOOKINGS_")}
    server = ServerProcess(env={}, log_path=workdir / "serve.log", cwd=workdir, base_env=clean_env).start()
    yield server, workdir
    server.stop()


class TestReadme:
    def test_the_default_run_serves_docs_on_a_sqlite_file(self, embedded_default: tuple[ServerProcess, Path]) -> None:
        server, workdir = embedded_default
        docs = httpx.get(f"{server.url}/docs", timeout=10)
        assert docs.status_code == 200
        assert "swagger" in docs.text.lower()
        assert httpx.get(f"{server.url}/openapi.json", timeout=10).json()["info"]["title"] == "Bookings"
        assert (workdir / "bookings.db").exists()
        assert (workdir / "bookings.db.keys").stat().st_mode & 0o077 == 0, "the key file is private"

    def test_the_curl_walkthrough_works(self, embedded_default: tuple[ServerProcess, Path]) -> None:
        server, _ = embedded_default
        script = _curl_walkthrough().replace("B=http://127.0.0.1:8000", f"B={server.url}")
        script = "set -euo pipefail\n" + script.replace("curl -s ", "curl -sf ")
        result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        assert '"status":"cancelled"' in result.stdout
        assert '"cancelReason":"feeling better"' in result.stdout
        assert '"startTime":"2030-05-01T08:00:00Z"' in result.stdout  # the reschedule, given at +02:00
        assert '"version":2' in result.stdout, "the reschedule's If-Match held: it applied to version 1"

    def test_the_availability_walkthrough_works(self, embedded_default: tuple[ServerProcess, Path]) -> None:
        """Run after the first walkthrough's accounts, as a reader would: it uses its $B, $AUTH and $PROVIDER."""
        server, _ = embedded_default
        accounts = _curl_walkthrough().split("BOOKING=$(", 1)[0].replace("B=http://127.0.0.1:8000", f"B={server.url}")
        accounts = accounts.replace("ada@example.com", "grace@example.com").replace("dr.who@", "dr.no@")
        script = accounts + _curl_walkthrough("### Availability with curl").replace("dr.who@", "dr.no@")
        script = "set -euo pipefail\n" + script.replace("curl -s ", "curl -sf ")
        result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        assert '"timeZone":"America/New_York","providerTimeZone":"Europe/Berlin"' in result.stdout
        assert result.stdout.count('"startTime":') == 7 + 3 + 1, "7 + 3 slots, and the booking"
        assert '"startTime":"2027-05-03T07:00:00Z","endTime":"2027-05-03T08:00:00Z","status":"confirmed"' in (
            result.stdout
        )
