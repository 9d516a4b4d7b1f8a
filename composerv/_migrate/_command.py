"""``composerv migrate [--check] [--diff] [--report] PATH...``: the command line.

Output, one line each: a changed file, every import rewritten, every note, on
stdout (on stderr with ``--diff``, whose stdout is a patch); files that cannot be
read or rewritten safely, on stderr. A file that never names socketserver or
SocketServer is not looked at further, so that test data and the like that no
Python can read are none of its business. Exit status: 0 done (or nothing to do),
1 with ``--check`` if a file would change, 2 for a usage error or a file left alone.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TypeVar

from ._files import python_files, write_atomically
from ._imports import may_import
from ._report import report
from ._rewrite import Migration, migrate_source
from ._source import SourceError

__all__ = ["EXIT_LEFT_ALONE", "EXIT_WOULD_CHANGE", "add_migrate_command", "migrate"]

_Parser = TypeVar("_Parser", bound=argparse.ArgumentParser)

EXIT_WOULD_CHANGE = 1
"""``--check`` found a file to change."""
EXIT_LEFT_ALONE = 2
"""A usage error, or a file that could not be read or rewritten safely."""


# argparse has no public name for the type of add_subparsers(): typeshed's is private.
def add_migrate_command(commands: argparse._SubParsersAction[_Parser]) -> None:  # pyright: ignore[reportPrivateUsage]
    """Add ``migrate`` to the command line's subcommands."""
    parser = commands.add_parser(
        "migrate",
        help="move socketserver code onto composerv's compat package",
        description="Rewrite every import of socketserver (or Python 2's SocketServer) in the "
        "Python sources under PATH to compat.socketserver (compat.SocketServer), changing "
        "nothing else, and print each change. With --report, suggest instead how each "
        "classic server and handler would look on composerv's core API.",
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or directories")
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a file would change"
    )
    parser.add_argument(
        "--diff", action="store_true", help="write nothing; print the changes as a unified diff"
    )
    parser.add_argument(
        "--report",
        action="store_true",
        help="write nothing; for each classic server and handler, suggest the core equivalent",
    )


def migrate(args: argparse.Namespace) -> int:
    """Run ``composerv migrate`` as `args` say; return the exit status."""
    paths: list[Path] = args.paths
    if args.report and (args.check or args.diff):
        return _usage_error("--report cannot be combined with --check or --diff")
    missing = [str(path) for path in paths if not path.exists()]
    if missing:
        return _usage_error(f"no such file or directory: {', '.join(missing)}")
    if args.report:
        return _report_all(paths)
    return _migrate_all(paths, check=args.check, diff=args.diff)


def _usage_error(message: str) -> int:
    print(f"composerv: error: {message} (see composerv migrate --help)", file=sys.stderr)
    return EXIT_LEFT_ALONE


def _migrate_all(paths: Sequence[Path], *, check: bool, diff: bool) -> int:
    # With --diff, stdout is the patch alone, so that it can be piped to `patch -p0`.
    out = sys.stderr if diff else sys.stdout
    status = 0
    for path in python_files(paths):
        try:
            data = _read(path)
            if not may_import(data):
                continue
            migration = migrate_source(data)
        except SourceError as exc:
            status = _left_alone(path, exc)
            continue
        if diff and migration.changed:
            sys.stdout.write(migration.diff(str(path)))
        for line in _describe(str(path), migration, written=not (check or diff)):
            print(line, file=out)
        if not migration.changed:
            continue
        shadow = _shadowing_compat(path)
        if shadow is not None:
            print(
                f"{path}: note: {shadow} would shadow composerv's compat package when "
                f"{path.name} runs as a script (its directory comes first on sys.path)",
                file=out,
            )
        if check:
            status = max(status, EXIT_WOULD_CHANGE)
        elif not diff:
            try:
                write_atomically(path, migration.migrated())
            except OSError as exc:
                status = _left_alone(path, SourceError(f"cannot write it: {exc}"))
    return status


def _describe(name: str, migration: Migration, *, written: bool) -> Iterator[str]:
    """The lines that say what migrating the file `name` did (or, not `written`, would do)."""
    if migration.changed:
        count = len(migration.rewrites)
        verb = "rewrote" if written else "would rewrite"
        yield f"{name}: {verb} {count} import{'s' if count > 1 else ''}"
        for rewrite in migration.rewrites:
            yield f"{name}:{rewrite.line}: {rewrite.before} -> {rewrite.after}"
    for note in migration.notes:
        yield f"{name}:{note.line}: note: {note.message}"
    if migration.not_python3 and migration.imports_legacy_module:
        yield (
            f"{name}: note: not Python 3 ({migration.not_python3}); if it is Python 2, only "
            "its imports are migrated: the rest needs a Python 2 to 3 conversion (e.g. 2to3) "
            "before it runs on compat"
        )


def _shadowing_compat(path: Path) -> Path | None:
    """A module of the program's own called compat, beside `path`: a common name."""
    for candidate in (path.parent / "compat.py", path.parent / "compat"):
        # composerv's own compat package has the Python 2 name as a module.
        if candidate.exists() and not (candidate / "SocketServer.py").exists():
            return candidate
    return None


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SourceError(f"cannot read it: {exc}") from None


def _left_alone(path: Path, error: SourceError) -> int:
    print(f"{path}: error: {error}; left alone", file=sys.stderr)
    return EXIT_LEFT_ALONE


def _report_all(paths: Sequence[Path]) -> int:
    status = 0
    for path in python_files(paths):
        try:
            data = _read(path)
            lines = report(str(path), data) if may_import(data) else []
        except SourceError as exc:
            status = _left_alone(path, exc)
            continue
        for line in lines:
            print(line)
    return status
