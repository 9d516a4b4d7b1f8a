"""What a program's imports bind: the classic modules and classes it can name."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from typing import TypeVar

from ._classic import CLASSES, MODULES

__all__ = ["Names", "nodes"]

_Node = TypeVar("_Node", bound=ast.AST)


class Names:
    """What the program's imports bind: module aliases, imported classes, star imports."""

    def __init__(self, tree: ast.Module) -> None:
        # "ss" -> "socketserver" for `import socketserver as ss`; "http.server" as itself.
        self.modules: dict[str, str] = {}
        # "T" -> ("socketserver", "TCPServer") for `from socketserver import TCPServer as T`.
        self.classes: dict[str, tuple[str, str]] = {}
        # The modules star-imported: all their classes are bare names.
        self.star: list[str] = []
        # (line, module, name) of each name from-imported, for `missing`.
        self.imported: list[tuple[int, str, str]] = []
        for node in nodes(tree, ast.Import):
            for alias in node.names:
                if alias.name in MODULES:
                    self.modules[alias.asname or alias.name] = MODULES[alias.name]
        for statement in nodes(tree, ast.ImportFrom):
            absolute = statement.level == 0
            module = MODULES.get(statement.module or "") if absolute else None
            for alias in statement.names:
                submodule = MODULES.get(f"{statement.module}.{alias.name}") if absolute else None
                if submodule is not None:
                    self.modules[alias.asname or alias.name] = submodule
                elif module is not None and alias.name == "*":
                    self.star.append(module)
                elif module is not None:
                    self.classes[alias.asname or alias.name] = (module, alias.name)
                    self.imported.append((statement.lineno, module, alias.name))

    def resolve(self, node: ast.expr) -> tuple[str, str] | None:
        """(module, name) for an expression naming a class of a known module."""
        dotted = _dotted(node)
        if dotted is None:
            return None
        prefix, _, name = dotted.rpartition(".")
        if prefix:
            return (self.modules[prefix], name) if prefix in self.modules else None
        if name in self.classes:
            return self.classes[name]
        return next(((m, name) for m in self.star if (m, name) in CLASSES), None)

    def missing(self, tree: ast.Module) -> Iterator[tuple[int, str]]:
        """The names the program takes from socketserver that compat does not have."""
        # Only the report needs compat, which brings in composerv's whole runtime.
        import compat.socketserver

        used = [(line, module, name) for line, module, name in self.imported]
        for node in nodes(tree, ast.Attribute):
            resolved = self.resolve(node)
            if resolved is not None:
                used.append((node.lineno, *resolved))
        for line, module, name in sorted(set(used)):
            if module == "socketserver" and not hasattr(compat.socketserver, name):
                yield line, f"socketserver.{name}"


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        prefix = _dotted(node.value)
        return None if prefix is None else f"{prefix}.{node.attr}"
    return None


def nodes(tree: ast.AST, kind: type[_Node]) -> Iterator[_Node]:
    """Every node of `kind` in `tree`."""
    return (node for node in ast.walk(tree) if isinstance(node, kind))
