"""The tree reads as the architecture: layers that import downwards only, no import cycles, small
modules. Read from the source with `ast`, so an import under `TYPE_CHECKING` counts too."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

from harness import ROOT

MAX_MODULE_LINES = 300
# components/<layer> may import the layers listed, and the shared top-level modules
# (components/endpoints.py, components/labels.py).
LAYERS = {
    "config": set(),
    "aws": {"config"},
    "kubernetes": {"config"},
    "observability": {"config", "kubernetes"},
    "delivery": set(),
}


def modules(root: Path, package: str) -> dict[str, Path]:
    found = {}
    for path in (root / package).rglob("*.py"):
        parts = path.relative_to(root).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imported(path: Path) -> set[str]:
    """Every absolute import of a module, wherever it stands, with `from x import y` as both `x`
    and `x.y` (y may be a submodule)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return names


def import_graph(found: Mapping[str, Path]) -> dict[str, set[str]]:
    """Module -> the modules of `found` it imports, anywhere in its source."""
    return {name: {t for t in imported(path) if t in found and t != name}
            for name, path in found.items()}


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in graph:
        if node not in index:
            visit(node)
    return found


PACKAGES = [(ROOT, "components"), (ROOT / "app", "agent_service"), (ROOT, "policies")]


@pytest.mark.parametrize(("root", "package"), PACKAGES)
def test_no_import_cycles(root: Path, package: str) -> None:
    found = modules(root, package)
    if package == "policies":  # the pack imports its modules as top-level names
        found = {path.stem: path for path in found.values()}
    assert cycles(import_graph(found)) == []


def test_the_cycle_check_finds_a_type_checking_cycle(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.b import B\n")
    (package / "b.py").write_text("from typing import TYPE_CHECKING\n"
                                  "if TYPE_CHECKING:\n    from pkg.a import A\n")
    assert cycles(import_graph(modules(tmp_path, "pkg"))) == [["pkg.a", "pkg.b"]]


def test_layers_import_downwards_only() -> None:
    graph = import_graph(modules(ROOT, "components"))
    wrong = []
    for module, targets in graph.items():
        layer = module.split(".")[1] if module.count(".") >= 2 else None
        if layer is None:
            continue
        for target in targets:
            other = target.split(".")[1] if target.count(".") >= 2 else None
            if other is not None and other != layer and other not in LAYERS[layer]:
                wrong.append(f"{module} imports {target}")
    assert wrong == []


@pytest.mark.parametrize(("root", "package"), PACKAGES)
def test_modules_stay_small(root: Path, package: str) -> None:
    long = {str(path.relative_to(ROOT)): lines for path in modules(root, package).values()
            if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert long == {}


def test_the_program_declares_every_package_it_imports() -> None:
    """`pulumi up` installs requirements.txt alone into ./venv: a package the program imports
    only because the test tools bring it along would fail there, not here."""
    pinned = {re.split(r"[=<>\[]", line)[0].strip().lower().replace("_", "-")
              for line in (ROOT / "requirements.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")}
    distributions = importlib.metadata.packages_distributions()
    sources = [ROOT / "__main__.py", *modules(ROOT, "components").values()]
    missing = set()
    for path in sources:
        for top in {name.split(".")[0] for name in imported(path)}:
            if top in sys.stdlib_module_names or top == "components":
                continue
            for distribution in distributions.get(top, [top]):
                if distribution.lower().replace("_", "-") not in pinned:
                    missing.add(f"{path.relative_to(ROOT)} imports {top} ({distribution})")
    assert missing == set()
