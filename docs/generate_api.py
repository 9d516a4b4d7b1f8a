"""Write docs/api.md from the docstrings of every name in ``composerv.__all__``.

Run ``python docs/generate_api.py`` after changing the public API;
tests/test_docs.py fails while the file is out of date.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import composerv

API_REFERENCE = Path(__file__).with_name("api.md")

HEADER = """# API reference

Every public name of `composerv`, as exported by `composerv/__init__.py`.
"""


def entry(name: str) -> str:
    """The section of the reference for one public name."""
    value = getattr(composerv, name)
    if inspect.isclass(value):
        title, kind = f"`{name}`", "class"
    elif inspect.isfunction(value):
        title, kind = f"`{name}{inspect.signature(value)}`", "function"
    else:
        title, kind = f"`{name}`", "type alias"
    doc = inspect.getdoc(value) if kind != "type alias" else None
    return f"\n## {title}\n\n*{kind}*\n" + (f"\n{doc}\n" if doc else "")


def reference() -> str:
    """The whole of docs/api.md."""
    return HEADER + "".join(entry(name) for name in composerv.__all__)


if __name__ == "__main__":
    API_REFERENCE.write_text(reference())
    sys.stdout.write(f"wrote {API_REFERENCE}\n")
