"""The code's layout (docs/development.md): no import circles, small modules and functions, short
positional argument lists, and the config importable without torch."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set

PACKAGE = Path(__file__).resolve().parent.parent / "dqn_cli"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
MAX_POSITIONAL = 7  # self and a transition's six fields; the rest keyword-only or a config object


def modules() -> Dict[str, ast.Module]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = ast.parse(path.read_text(), str(path))
    return found


def imports(tree: ast.Module, known: Set[str]) -> Set[str]:
    """The package's modules `tree` imports, at the top or inside functions (lazy imports count too)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:  # `from pkg import module` names a module; `from module import name` not
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in known else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found & known


def import_cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    cycles: List[List[str]] = []

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
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return cycles


def test_no_module_imports_one_that_imports_it_back():
    trees = modules()
    graph = {name: imports(tree, set(trees)) - {name} for name, tree in trees.items()}
    assert import_cycles(graph) == []


def test_the_cycle_check_finds_a_cycle_through_a_lazy_import():
    lazy = ast.parse("def f():\n    from pkg.b import thing\n")
    graph = {"pkg.a": imports(lazy, {"pkg.a", "pkg.b"}), "pkg.b": {"pkg.a"}}
    assert graph["pkg.a"] == {"pkg.b"} and import_cycles(graph) == [["pkg.a", "pkg.b"]]


def test_modules_and_functions_stay_small():
    too_long = []
    for name, tree in modules().items():
        lines = len((PACKAGE.parent / (name.replace(".", "/"))).with_suffix(".py").read_text().splitlines()) \
            if (PACKAGE.parent / name.replace(".", "/")).with_suffix(".py").is_file() else 0
        if lines > MAX_MODULE_LINES:
            too_long.append(f"{name}: {lines} lines")
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{name}.{node.name}: {length} lines")
    assert too_long == []


def test_no_long_positional_argument_lists():
    long_lists = []
    for name, tree in modules().items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                positional = len(node.args.posonlyargs) + len(node.args.args)
                if positional > MAX_POSITIONAL:
                    long_lists.append(f"{name}.{node.name}: {positional}")
    assert long_lists == []


def test_the_outputs_folder_of_the_layout_is_in_the_checkout_and_kept_empty():
    root = PACKAGE.parent
    assert (root / "outputs" / ".gitkeep").is_file()
    ignored = (root / ".gitignore").read_text().splitlines()
    assert "outputs/*" in ignored and "!outputs/.gitkeep" in ignored  # runs never land in git
