"""The architecture holds: composerv's modules import one way, with nothing hidden.

Each module's imports are read from its source: at module level (imports for type
checking only do not count: they run nowhere) and inside functions, where an import
would hide a cycle. The graph of subpackages and top-level modules must have no
cycle, so each layer builds only on the ones below it (docs/architecture.md).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "composerv"


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _resolve(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _is_type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(module: str) -> tuple[set[str], list[str]]:
    """The composerv modules `module` imports at run time, and the imports it makes
    inside functions."""
    path = MODULES[module]
    tree = ast.parse(path.read_text())
    is_package = path.name == "__init__.py"
    imported: set[str] = set()
    hidden: list[str] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        if _is_type_checking_block(node):
            return
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            in_function = True
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node, is_package)
            names = [target] + [f"{target}.{alias.name}" for alias in node.names]
        else:
            names = []
        for name in names:
            if name.startswith("composerv"):
                if in_function:
                    hidden.append(f"{module}:{node.lineno} imports {name}")
                if name in MODULES:
                    imported.add(name)
        for child in ast.iter_child_nodes(node):
            visit(child, in_function)

    visit(tree, False)
    return imported, hidden


def _unit(module: str) -> str:
    """The layer a module belongs to: its subpackage, or the module itself."""
    parts = module.split(".")
    return ".".join(parts[:2])


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    visiting: list[str] = []
    done: set[str] = set()

    def walk(node: str) -> list[str] | None:
        if node in visiting:
            return [*visiting[visiting.index(node) :], node]
        if node in done:
            return None
        visiting.append(node)
        for nxt in sorted(graph.get(node, ())):
            if found := walk(nxt):
                return found
        visiting.pop()
        done.add(node)
        return None

    for node in sorted(graph):
        if found := walk(node):
            return found
    return None


def test_no_module_imports_composerv_inside_a_function() -> None:
    hidden = [line for module in MODULES for line in _imports(module)[1]]
    assert hidden == []


def test_the_layers_import_one_way() -> None:
    graph: dict[str, set[str]] = {}
    for module in MODULES:
        if module == "composerv":
            continue  # the public face re-exports every layer
        unit = _unit(module)
        for target in _imports(module)[0]:
            if target != "composerv" and _unit(target) != unit:
                graph.setdefault(unit, set()).add(_unit(target))
    assert _cycle(graph) is None


@pytest.mark.parametrize(
    ("low", "high"),
    [
        ("composerv._runtime", "composerv._concurrency"),
        ("composerv._runtime", "composerv._handlers"),
        ("composerv._runtime", "composerv._server"),
        ("composerv._context", "composerv._runtime"),
        ("composerv._transports", "composerv._runtime"),
    ],
)
def test_a_lower_layer_never_imports_a_higher_one(low: str, high: str) -> None:
    for module in MODULES:
        if _unit(module) == low:
            assert not any(_unit(target) == high for target in _imports(module)[0]), module
