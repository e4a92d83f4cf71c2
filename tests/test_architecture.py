"""The house has floors and no circles: every project module, imports inside functions
included, and every room (a top-level folder, or one of ``reelforge``'s sub-packages)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("reelforge", "flows", "tasks", "models", "db", "migrations", "benchmarks", "scripts")
REELFORGE_ROOMS = ("core", "ops", "campaigns", "cli", "api")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    sys.path.insert(0, str(REPO))  # scripts/ is not installed
    try:
        return grimp.build_graph(*PACKAGES, include_external_packages=False)
    finally:
        sys.path.remove(str(REPO))


def room(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "reelforge" and len(parts) > 1 and parts[1] in REELFORGE_ROOMS:
        return ".".join(parts[:2])
    return parts[0]


def strongly_connected(edges: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's components with more than one member: each is a circle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(component)

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return circles


def test_no_circle_between_modules(graph) -> None:
    edges = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    assert strongly_connected(edges) == []


def test_no_circle_between_rooms(graph) -> None:
    edges: dict[str, set[str]] = {}
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            if room(module) != room(imported):
                edges.setdefault(room(module), set()).add(room(imported))
    assert strongly_connected(edges) == []


def test_the_circle_finder_finds_a_circle() -> None:
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]


def test_layers_contract_holds() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint)], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:]
    assert "1 kept, 0 broken" in done.stdout


def test_no_stage_forwarding_wrappers() -> None:
    assert sorted(REPO.glob("tasks/*/task.py")) == []
