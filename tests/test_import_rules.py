"""The floor plan (docs/architecture.md), checked on every run: the import-linter contracts in
pyproject.toml (imports go down the floors, features never import each other, no circles), no
circle between single modules either, and a floor for every folder of ivr/."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent


def _contracts() -> list[dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return list(config["tool"]["importlinter"]["contracts"])


def _floors() -> list[set[str]]:
    """The layers contract's floors, top first, each a set of folder (or module) names."""
    (layers,) = [c for c in _contracts() if c["type"] == "layers"]
    floors = layers["layers"]
    assert isinstance(floors, list)
    return [{name.strip("() ") for name in re.split(r"[|:]", floor)} for floor in floors]


def test_the_import_contracts_hold() -> None:
    lint = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run([str(lint), "--config", str(ROOT / "pyproject.toml")], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_folder_of_ivr_has_a_floor() -> None:
    # A layers contract says nothing about a module it does not list: a new folder must be
    # given its floor in pyproject.toml (and docs/architecture.md) before it can be imported.
    graph = grimp.build_graph("ivr")
    placed = set().union(*_floors())
    areas = {m.removeprefix("ivr.") for m in graph.find_children("ivr")}
    assert areas - placed == set(), "add these to [tool.importlinter] layers in pyproject.toml"


def test_the_package_itself_imports_only_the_ground_floor() -> None:
    graph = grimp.build_graph("ivr")
    ground = {f"ivr.{name}" for name in _floors()[-1]}
    imported = graph.find_modules_directly_imported_by("ivr")
    assert {m for m in imported if not any(m == g or m.startswith(g + ".") for g in ground)} \
        == set()


def test_no_circle_between_modules() -> None:
    """Module by module (Tarjan), as the contract's one ignored import could hide one."""
    graph = grimp.build_graph("ivr")
    edges = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    circles: list[list[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, targets = work[-1]
            for target in targets:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(edges[target]))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    circle = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        circle.append(member)
                        if member == node:
                            break
                    if len(circle) > 1:
                        circles.append(sorted(circle))
    assert circles == []
