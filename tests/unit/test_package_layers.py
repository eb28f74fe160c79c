"""The packages depend on each other one way: no cycle between domains, and the jobs package knows none.

Edge modules (the app, the composition root, the command line, the worker process, migrations) may import
anything; they are not part of the graph.
"""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "bookings"
EDGE = {"app", "components", "cli", "worker_process", "admin", "migrate", "migrations", "__main__"}
# The base every domain stands on, one layer: the toolkit, the error tree, the database, the settings.
BASE = {"kit", "errors", "db", "config"}
KNOWN: set[frozenset[str]] = set()


def _layer(name: str) -> str:
    return "base" if name in BASE else name


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        package = _layer(path.relative_to(SRC).parts[0].removesuffix(".py"))
        if package in EDGE:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                parts = name.split(".")
                if parts[0] != "bookings" or len(parts) < 2:
                    continue
                target = _layer(parts[1])
                if target not in (package, *EDGE):
                    graph.setdefault(package, set()).add(target)
    return graph


def _reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        here = todo.pop()
        if here == goal:
            return True
        if here not in seen:
            seen.add(here)
            todo.extend(graph.get(here, ()))
    return False


def test_no_two_packages_depend_on_each_other() -> None:
    graph = _graph()
    cycles = {
        frozenset({a, b})
        for a, b in itertools.combinations(sorted(graph), 2)
        if _reaches(graph, a, b) and _reaches(graph, b, a)
    }
    assert cycles <= KNOWN, sorted(sorted(cycle) for cycle in cycles - KNOWN)
    assert not _reaches(graph, "events", "bookings"), "events reach the bookings domain"


def test_the_jobs_package_knows_no_domain() -> None:
    assert _graph().get("jobs", set()) <= {"base", "ops", "identity"}
