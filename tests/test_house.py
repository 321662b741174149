"""House rules that code review would otherwise have to catch: `models/` knows no world, and no module of
genworld imports, directly or through others, a module that imports it back."""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "genworld"
WORLD_NAMES = ("bounce", "tabletop", "arcade", "pong", "breakout", "cartpole", "gym", "drive", "metaworld", "palette")


def test_models_name_no_world() -> None:
    """models/ is one recipe for every world: no world's name, nor a palette, in its code or its comments."""
    word = re.compile(r"\b(" + "|".join(WORLD_NAMES) + r")\b", re.IGNORECASE)
    found = [f"{path.relative_to(SRC)}:{i}: {line.strip()}"
             for path in sorted((PACKAGE / "models").rglob("*.py"))
             for i, line in enumerate(path.read_text().splitlines(), 1) if word.search(line)]
    assert not found, "world names in models/:\n" + "\n".join(found)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, module: str, is_package: bool, modules: set[str]) -> set[str]:
    """The genworld modules a module imports, at the top or inside functions; `if TYPE_CHECKING:` blocks
    are skipped (they never run)."""
    out: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "genworld":
                    out.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            if base.split(".")[0] == "genworld":
                for alias in node.names:  # `from pkg import mod` imports the module pkg.mod, else a name of pkg
                    out.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    out.discard(module)
    return {m for m in out if m in modules}


def import_graph() -> dict[str, set[str]]:
    """Every module of genworld -> the genworld modules it imports."""
    paths = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
    modules = set(paths)
    return {m: _imports(ast.parse(p.read_text(), str(p)), m, p.name == "__init__.py", modules)
            for m, p in paths.items()}


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[frozenset[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(frozenset(comp))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return out


def a_cycle(graph: dict[str, set[str]], comp: frozenset[str]) -> list[str]:
    """One import path that leads from a module of `comp` back to itself, for the failure message."""
    start = min(comp)
    paths = {start: [start]}
    todo = [start]
    while todo:  # breadth first: the shortest way back
        v = todo.pop(0)
        for w in sorted(graph[v] & comp):
            if w == start:
                return paths[v] + [start]
            if w not in paths:
                paths[w] = paths[v] + [w]
                todo.append(w)
    raise AssertionError(f"no cycle through {start}")


def test_the_import_graph_sees_imports_at_any_depth_but_not_type_checking_ones(tmp_path: Path) -> None:
    code = ("from typing import TYPE_CHECKING\nfrom genworld.b import thing\nfrom . import c\n"
            "if TYPE_CHECKING:\n    from genworld.d import D\n"
            "def f():\n    import genworld.e\n    from genworld.pkg import mod\n")
    modules = {"genworld.a", "genworld.b", "genworld.c", "genworld.d", "genworld.e", "genworld.pkg", "genworld.pkg.mod"}
    got = _imports(ast.parse(code), "genworld.a", False, modules)
    assert got == {"genworld.b", "genworld.c", "genworld.e", "genworld.pkg.mod"}
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [frozenset("abc")] and a_cycle(graph, frozenset("abc")) == ["a", "b", "c", "a"]


def test_no_import_cycle() -> None:
    """No module imports, directly or through others, one that imports it back (a lazy import inside a function
    counts: it only hides the cycle until that function runs)."""
    graph = import_graph()
    assert "genworld.models.world_model" in graph and graph["genworld.rollout.session"]  # it found the modules
    found = [" -> ".join(a_cycle(graph, c)) for c in cycles(graph)]
    assert not found, "import cycles:\n" + "\n".join(found)
