"""Fixtures for the SDK tests: a real ``bookings serve`` on SQLite, and the SDK installed in a fresh virtualenv."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Service, start_service

ROOT = Path(__file__).resolve().parents[2]
SDK = ROOT / "clients" / "python"


@pytest.fixture(scope="session")
def sdk_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One server shared by the SDK tests that do not stop it (each test makes its own accounts)."""
    svc = start_service("sqlite", tmp_path_factory.mktemp("sdk"))
    yield svc
    svc.server.stop()
    svc.db.drop()


@pytest.fixture
def restartable_service(tmp_path: Path) -> Iterator[Service]:
    """A server of the test's own, which the test may stop and replace."""
    svc = start_service("sqlite", tmp_path)
    yield svc
    svc.server.stop()
    svc.db.drop()


@pytest.fixture(scope="session")
def sdk_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv (``python -m venv``) with ``pip install clients/python``: nothing of the service in it.

    Built once per test session. Returns the venv's Python.
    """
    venv = tmp_path_factory.mktemp("sdk-venv") / "venv"
    started = time.monotonic()
    # The base interpreter, not this project's venv: the new venv must not see the project's packages.
    base_python = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base_python, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=120)
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"}}
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-input", str(SDK)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert install.returncode == 0, f"pip install failed:\n{install.stdout}\n{install.stderr}"
    print(f"sdk venv ready in {time.monotonic() - started:.1f}s")  # shown with -s; a slow index shows up here
    return python
