"""What the echo servers beside this file share: the checkout they run, the address they take.

Each server takes ``--root DIR`` to import composerv and compat from another
checkout (e.g. a frozen copy of main, to measure before and after in one run);
without it they import this repository's. The harness's contract for the rest:
ADDR as ``127.0.0.1:PORT``, ``[::1]:PORT`` or ``unix:/path``, ``READY`` on stdout
once listening and nothing else there.
"""

from __future__ import annotations

import argparse
import os
import sys

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def add_root_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--root DIR``, the checkout to import composerv and compat from."""
    parser.add_argument(
        "--root",
        default=REPOSITORY,
        help="a composerv checkout (holds composerv/ and compat/) to run; default: this one",
    )


def use_checkout(argv: list[str]) -> None:
    """Put the checkout that ``--root`` names in `argv` (else this repository) first on sys.path.

    Called before composerv is imported, so the import finds that checkout's copy
    even when another one is installed.
    """
    finder = argparse.ArgumentParser(add_help=False)
    add_root_option(finder)
    root = os.path.abspath(finder.parse_known_args(argv)[0].root)
    if not os.path.isfile(os.path.join(root, "composerv", "__init__.py")):
        sys.exit(f"--root {root!r} holds no composerv/ package: name a checkout of composerv")
    sys.path.insert(0, root)


def parse_address(addr: str) -> str | tuple[str, int]:
    """``127.0.0.1:PORT`` or ``[::1]:PORT`` as ``(host, port)``; ``unix:/path`` as the path."""
    if addr.startswith("unix:"):
        return addr.removeprefix("unix:")
    if addr.startswith("["):
        host, _, port = addr[1:].partition("]:")
    else:
        host, _, port = addr.rpartition(":")
    return host, int(port)


def ready() -> None:
    """Tell the harness the server listens."""
    print("READY", flush=True)
