"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest

from .support import Resources, assert_no_leaks


@pytest.fixture
def no_leaks() -> Iterator[None]:
    """Fail the test if it leaves descriptors, threads or child processes behind."""
    before = Resources.now()
    yield
    assert_no_leaks(before)


@pytest.fixture
def unix_path() -> Iterator[str]:
    """A fresh, short unix socket path (pytest's tmp_path can exceed sun_path's 108 bytes)."""
    with tempfile.TemporaryDirectory(prefix="csv-") as directory:
        yield os.path.join(directory, "s.sock")
