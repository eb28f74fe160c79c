"""Static typing: the example passes ``mypy --strict``, the SDK's types reach its users, both clients agree."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest
from bookings_client import AsyncBookingsClient, BookingsClient

from tests.sdk.conftest import ROOT, SDK


def mypy(*targets: str | Path) -> subprocess.CompletedProcess[str]:
    # The SDK's own mypy settings (strict, the pydantic plugin), not the service's (which checks src/bookings).
    args = [sys.executable, "-m", "mypy", "--strict", "--config-file", str(SDK / "pyproject.toml")]
    args += ["--no-incremental", "--cache-dir", "/dev/null"]  # leave the service's .mypy_cache alone
    return subprocess.run([*args, *map(str, targets)], capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_the_example_and_the_sdk_pass_mypy_strict() -> None:
    result = mypy(SDK / "examples" / "quickstart.py", SDK / "src" / "bookings_client")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_sees_the_sdk_types(tmp_path: Path) -> None:
    """A misuse is caught, so the SDK's annotations reach a user's checker (``py.typed``), not ``Any``."""
    wrong = tmp_path / "wrong.py"
    wrong.write_text(
        "from bookings_client import BookingsClient\n"
        "client = BookingsClient('http://127.0.0.1:1')\n"
        "client.bookings.list(type='soon')\n"
        "name: int = client.users.me().name\n"
    )
    result = mypy(wrong)
    assert result.returncode == 1, result.stdout
    assert 'Argument "type" to "list" of "Bookings" has incompatible type' in result.stdout
    assert 'Incompatible types in assignment (expression has type "str", variable has type "int")' in result.stdout


RESOURCES = ["auth", "users", "providers", "bookings", "availability"]


def _methods(obj: object) -> dict[str, list[tuple[str, object, object]]]:
    found = {}
    for name, member in inspect.getmembers(obj, callable):
        if not name.startswith("_"):
            params = inspect.signature(member).parameters.values()
            found[name] = [(p.name, p.kind, p.default) for p in params]
    return found


@pytest.mark.parametrize("resource", RESOURCES)
async def test_the_sync_and_async_clients_have_the_same_methods(resource: str) -> None:
    async with AsyncBookingsClient("http://127.0.0.1:1") as async_client:
        with BookingsClient("http://127.0.0.1:1") as sync_client:
            assert _methods(getattr(sync_client, resource)) == _methods(getattr(async_client, resource))
