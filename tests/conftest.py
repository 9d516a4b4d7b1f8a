"""Fixtures shared by the whole suite; composerv's pytest plugin adds its own
(``composerv_no_leaks``, ``composerv_serving``, ...)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest


@pytest.fixture
def unix_path() -> Iterator[str]:
    """A fresh, short unix socket path (pytest's tmp_path can exceed sun_path's 108 bytes)."""
    with tempfile.TemporaryDirectory(prefix="csv-") as directory:
        yield os.path.join(directory, "s.sock")
