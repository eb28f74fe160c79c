"""The TypeScript client (``clients/typescript``): its types are what openapi-typescript makes of the live document,
it builds with ``tsc --strict``, and its own tests (Node's test runner) pass against a real server.

Its packages come from ``package-lock.json`` alone (``npm ci``), once per lock file: ``node_modules`` is stamped
with the lock's digest and reused while it matches. The server is this suite's; a small control endpoint lets the
Node tests restart it mid-stream (``POST /restart``: the same port and database, a new process).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Service
from tests.support.servers import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "clients" / "typescript"
STAMP = CLIENT / "node_modules" / ".bookings-lock-sha256"
REGENERATE = "make typescript-types"


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        args, cwd=CLIENT, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def node_modules() -> Path:
    """``npm ci`` from the lock file, unless ``node_modules`` already holds exactly that lock's packages."""
    assert shutil.which("npm"), "Node 20+ and npm are needed for the TypeScript client's tests"
    digest = hashlib.sha256((CLIENT / "package-lock.json").read_bytes()).hexdigest()
    if not (STAMP.is_file() and STAMP.read_text().strip() == digest):
        run("npm", "ci", "--prefer-offline", "--no-audit", "--no-fund")
        STAMP.write_text(digest)
    return CLIENT / "node_modules"


class _Restarts:
    """``POST /restart`` stops the service's server and starts a new one on its port and database."""

    def __init__(self, service: Service, logs: Path) -> None:
        self.service = service
        self.logs = logs
        self.count = 0
        self.lock = threading.Lock()

    def restart(self) -> None:
        with self.lock:
            old = self.service.server
            old.stop()
            self.count += 1
            log_path = self.logs / f"server-restarted-{self.count}.log"
            self.service.server = ServerProcess(env=old.env, log_path=log_path, port=old.port).start()


@pytest.fixture
def control(live_service: Service, tmp_path: Path) -> Iterator[tuple[str, _Restarts]]:
    restarts = _Restarts(live_service, tmp_path)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.path != "/restart":
                self.send_error(404)
                return
            restarts.restart()
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", restarts
    server.shutdown()
    server.server_close()


class TestTypeScriptClient:
    def test_the_committed_types_are_what_openapi_typescript_makes_of_the_live_document(
        self, node_modules: Path, live_document: dict[str, Any], tmp_path: Path
    ) -> None:
        document = tmp_path / "openapi.json"
        document.write_text(json.dumps(live_document))
        fresh = tmp_path / "schema.ts"
        run("node", str(node_modules / "openapi-typescript" / "bin" / "cli.js"), str(document), "--output", str(fresh))

        committed = (CLIENT / "src" / "schema.ts").read_text()
        generated = fresh.read_text()
        diff = "".join(
            difflib.unified_diff(
                committed.splitlines(keepends=True), generated.splitlines(keepends=True), "committed", "generated"
            )
        )
        assert committed == generated, f"the document changed under the TypeScript client: {REGENERATE}\n{diff[:4000]}"

    def test_it_builds_with_tsc_strict_and_its_tests_pass_against_a_live_server(
        self, node_modules: Path, live_service: Service, control: tuple[str, _Restarts]
    ) -> None:
        control_url, restarts = control
        result = run(
            "npm",
            "test",
            env={"BOOKINGS_URL": live_service.url, "BOOKINGS_CONTROL_URL": control_url, "NO_COLOR": "1"},
        )

        output = result.stdout + result.stderr
        assert "# fail 0" in output, output
        assert "tsc --project tsconfig.json --strict" in output
        assert restarts.count == 1, "the event stream test restarts the server once"
