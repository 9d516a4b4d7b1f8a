"""Write docs/api.md from the docstrings of every name in ``composerv.__all__``.

Run ``python docs/generate_api.py`` after changing the public API;
tests/test_docs.py fails while the file is out of date.
"""

from __future__ import annotations

import inspect
import sys
import typing
from pathlib import Path

import composerv

API_REFERENCE = Path(__file__).with_name("api.md")

HEADER = """# API reference

Every public name of `composerv`, as exported by `composerv/__init__.py`.
"""


def kind_of(value: object) -> str:
    """What the reference calls a public name: "class", "function" or "type alias"."""
    # On Python 3.10 a parametrised generic such as Callable[[bytes], bytes] passes
    # inspect.isclass; it is an alias all the same (3.11 no longer counts it a class).
    if typing.get_origin(value) is None and inspect.isclass(value):
        return "class"
    if inspect.isfunction(value):
        return "function"
    return "type alias"


def entry(name: str) -> str:
    """The section of the reference for one public name."""
    value = getattr(composerv, name)
    kind = kind_of(value)
    title = f"`{name}{inspect.signature(value)}`" if kind == "function" else f"`{name}`"
    doc = inspect.getdoc(value) if kind != "type alias" else None
    return f"\n## {title}\n\n*{kind}*\n" + (f"\n{doc}\n" if doc else "")


def reference() -> str:
    """The whole of docs/api.md."""
    return HEADER + "".join(entry(name) for name in composerv.__all__)


if __name__ == "__main__":
    API_REFERENCE.write_text(reference())
    sys.stdout.write(f"wrote {API_REFERENCE}\n")
