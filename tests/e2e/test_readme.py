"""The README does not lie: its defaults start the service, and its curl walkthrough works against it."""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.servers import ServerProcess, free_port

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

    def test_the_mail_walkthrough_shows_the_messages(self, tmp_path: Path) -> None:
        """Its SMTP debugging server and its ``BOOKINGS_SMTP_URL``, on a free port, then a booking: both people's
        confirmations are printed, invites included."""
        smtp_line, serve_line = _curl_walkthrough("### Mail on your machine").strip().splitlines()
        port = str(free_port())
        command = shlex.split(smtp_line.split("&", 1)[0])
        assert command == ["make", "smtp-debug"]
        printed = tmp_path / "smtp.out"
        with printed.open("wb") as out:
            smtp = subprocess.Popen(
                [*command, f"SMTP_DEBUG_PORT={port}"],
                cwd=README.parent,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # make, uv and aiosmtpd: stopped together
            )
        try:
            _wait_for_port(int(port), smtp, printed)
            assignment = shlex.split(serve_line.split(" make run", 1)[0])
            env = dict(item.split("=", 1) for item in assignment)
            assert set(env) == {"BOOKINGS_SMTP_URL"}
            env = {k: v.replace("8025", port) for k, v in env.items()}
            clean_env = {k: v for k, v in os.environ.items() if not k.startswith("BOOKINGS_")}
            server = ServerProcess(env=env, log_path=tmp_path / "serve.log", cwd=tmp_path, base_env=clean_env).start()
            try:
                script = _curl_walkthrough().replace("B=http://127.0.0.1:8000", f"B={server.url}")
                script = "set -euo pipefail\n" + script.replace("curl -s ", "curl -sf ")
                result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, check=False)
                assert result.returncode == 0, result.stdout + result.stderr
                deadline = time.monotonic() + 20
                while printed.read_text(errors="replace").count("Subject: Booked") < 2 and time.monotonic() < deadline:
                    time.sleep(0.1)
            finally:
                server.stop()
        finally:
            os.killpg(smtp.pid, signal.SIGTERM)
            smtp.wait(timeout=10)
        out_text = printed.read_text(errors="replace")
        assert out_text.count("Subject: Booked") == 2, out_text[-3000:]
        assert "METHOD:REQUEST" in out_text


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until something listens on ``port`` (a first ``uv tool run`` fetches aiosmtpd from PyPI)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"make smtp-debug exited: {log.read_text(errors='replace')[-2000:]}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"make smtp-debug did not listen on {port}: {log.read_text(errors='replace')[-2000:]}")
