"""Which files ``composerv migrate PATH...`` looks at, and writing them back safely."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = ["python_files", "write_atomically"]

# Directories that hold other people's code or generated files, never the program's
# own sources: a virtualenv's site-packages is full of socketserver users.
_SKIPPED_DIRECTORIES = frozenset({"__pycache__", "site-packages", "dist-packages", "node_modules"})
_SOURCE_SUFFIXES = (".py", ".pyw")


def python_files(paths: Sequence[Path]) -> Iterator[Path]:
    """Each path that is a file, and the Python sources under each directory, in order.

    A directory is searched recursively for ``*.py`` and ``*.pyw``, skipping hidden
    directories (``.git``, ``.venv``), virtualenvs (a ``pyvenv.cfg``), ``__pycache__``,
    ``site-packages`` and ``node_modules``; symbolic links to directories are not followed.
    """
    for path in paths:
        if not path.is_dir():
            yield path
            continue
        for directory, subdirectories, files in os.walk(path):
            subdirectories[:] = sorted(
                name
                for name in subdirectories
                if not name.startswith(".")
                and name not in _SKIPPED_DIRECTORIES
                and not os.path.exists(os.path.join(directory, name, "pyvenv.cfg"))
            )
            for name in sorted(files):
                if name.endswith(_SOURCE_SUFFIXES):
                    yield Path(directory, name)


def write_atomically(path: Path, data: bytes) -> None:
    """Replace the contents of `path` with `data`: all of it or, on any failure, none.

    The file keeps its permissions; through a symbolic link, the target is written.
    """
    target = path.resolve()
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        shutil.copymode(target, temporary)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
