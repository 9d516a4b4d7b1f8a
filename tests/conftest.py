"""Fixtures shared by the whole suite; composerv's pytest plugin adds its own
(``composerv_no_leaks``, ``composerv_serving``, ...)."""

from __future__ import annotations

import importlib
import importlib.util
import os
import tempfile
from collections.abc import Iterator

import pytest


@pytest.fixture
def unix_path() -> Iterator[str]:
    """A fresh, short unix socket path (pytest's tmp_path can exceed sun_path's 108 bytes)."""
    with tempfile.TemporaryDirectory(prefix="csv-") as directory:
        yield os.path.join(directory, "s.sock")


@pytest.fixture(scope="session")
def uvloop_globals() -> None:
    """uvloop opens a process-wide pipe with its first loop, kept for the process's
    life: a test module that runs uvloop uses this (autouse) so that the pipe is open
    before the leak checks take their baseline. Nothing when uvloop is missing."""
    if importlib.util.find_spec("uvloop") is not None:
        importlib.import_module("uvloop").new_event_loop().close()
