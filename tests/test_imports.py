"""Imports flow one way: cli -> scheduler -> jobs -> trainers -> registry -> db, with no cycle.

Read from the source with ast, function-level imports included: an import placed inside a
function to dodge a cycle is still a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "recsys_db"

# Highest first: a module may import its own layer or one below it, never one above.
LAYERS = [
    ("cli", ("recsys_db.cli",)),
    ("scheduler", ("recsys_db.scheduler",)),
    ("jobs", ("recsys_db.jobs",)),
    ("trainers", ("recsys_db.cf", "recsys_db.interest", "recsys_db.ranker")),
    ("registry", ("recsys_db.registry",)),
    ("db", ("recsys_db.db", "recsys_db.sqlfiles", "recsys_db.config", "recsys_db.errors",
            "recsys_db.embedded")),
]


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports (anywhere in its source)."""
    mods = modules()

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in mods.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the module's package upwards
                    anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{anchor}.{base}" if base else anchor
                # `from pkg import sub` imports the submodule pkg.sub when there is one
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base
                         for a in node.names]
            else:
                continue
            for name in names:
                target = resolve(name) if name.startswith("recsys_db") else None
                if target is not None and target != module:
                    targets.add(target)
        graph[module] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def layer(module: str) -> int | None:
    for rank, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    return None


def test_the_package_has_no_import_cycle():
    assert cycles(import_graph()) == []


def test_the_cycle_check_sees_function_level_imports(tmp_path, monkeypatch):
    """The checker itself: a cycle closed only inside a function is found."""
    package = tmp_path / "recsys_db"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from recsys_db import b\n")
    (package / "b.py").write_text("def f():\n    from recsys_db.a import x\n    return x\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", package)
    assert cycles(import_graph()) == [["recsys_db.a", "recsys_db.b"]]


def test_imports_flow_down_the_layers():
    upward = sorted(f"{a} imports {b} ({LAYERS[layer(b)][0]} is above {LAYERS[layer(a)][0]})"
                    for a, targets in import_graph().items() for b in targets
                    if layer(a) is not None and layer(b) is not None and layer(b) < layer(a))
    assert upward == []


def test_the_registry_imports_only_the_database_layer():
    assert import_graph()["recsys_db.registry"] <= {"recsys_db.errors", "recsys_db.sqlfiles",
                                                    "recsys_db.config"}
