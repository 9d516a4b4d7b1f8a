"""composerv's own top-level ``compat`` package, even where a project's ``compat`` shadows it.

Many projects have a ``compat`` module of their own, often first on ``sys.path``
(beside the main script). Then ``import compat.socketserver`` would find theirs, so
composerv's package is loaded from where composerv installed it, under a private name.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

# compat is installed beside composerv, by the wheel as in the source tree.
_PACKAGE = Path(__file__).resolve().parents[2] / "compat"

# The name composerv's compat gets when ``compat`` is someone else's; no file has it.
_PRIVATE_NAME = "composerv._compat"


def classic(submodule: str) -> ModuleType:
    """The module ``compat.<submodule>`` of composerv's compat package."""
    return importlib.import_module(f"{_package().__name__}.{submodule}")


def _package() -> ModuleType:
    if _is_ours(_spec_of("compat")):
        return importlib.import_module("compat")
    if (loaded := sys.modules.get(_PRIVATE_NAME)) is not None:
        return loaded
    spec = importlib.util.spec_from_file_location(
        _PRIVATE_NAME, _PACKAGE / "__init__.py", submodule_search_locations=[str(_PACKAGE)]
    )
    # A .py location always has a loader: this is for the type checker.
    assert spec is not None and spec.loader is not None
    package = importlib.util.module_from_spec(spec)
    sys.modules[_PRIVATE_NAME] = package
    spec.loader.exec_module(package)
    return package


def _spec_of(name: str) -> ModuleSpec | None:
    try:
        return importlib.util.find_spec(name)
    except ValueError:  # imported, but with no __spec__: not a package we installed
        return None


def _is_ours(spec: ModuleSpec | None) -> bool:
    if spec is None or spec.origin is None:
        return False
    return Path(spec.origin).resolve() == _PACKAGE / "__init__.py"
