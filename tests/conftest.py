"""Fixtures shared by the whole suite; composerv's pytest plugin adds its own
(``composerv_no_leaks``, ``composerv_serving``, ...)."""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

import composerv
from compat import _servers as compat_servers

LEAK_CHECK = "composerv_no_leaks"
"""The fixture every test that makes a server must use (see `servers_need_leak_checks`):
composerv.testing's, from the plugin."""


@pytest.fixture(autouse=True)
def servers_need_leak_checks(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Fail a test that makes a server (core or compat) in this process without
    `composerv_no_leaks`: a server is what leaks descriptors, threads and children, so a test
    that starts one must show it left nothing behind."""
    made: list[str] = []

    def recording(init: Any) -> Any:
        @functools.wraps(init)
        def record_then_init(self: Any, *args: Any, **kwargs: Any) -> None:
            made.append(type(self).__name__)
            init(self, *args, **kwargs)

        return record_then_init

    monkeypatch.setattr(composerv.Server, "__init__", recording(composerv.Server.__init__))
    monkeypatch.setattr(
        compat_servers.BaseServer, "__init__", recording(compat_servers.BaseServer.__init__)
    )
    yield
    if made and LEAK_CHECK not in request.fixturenames:
        pytest.fail(
            f"{request.node.nodeid} made {len(made)} server(s) ({', '.join(sorted(set(made)))}) "
            f"without the {LEAK_CHECK} fixture: add it to the test's arguments"
        )


@pytest.fixture
def unix_path() -> Iterator[str]:
    """A fresh, short unix socket path (pytest's tmp_path can exceed sun_path's 108 bytes)."""
    with tempfile.TemporaryDirectory(prefix="csv-") as directory:
        yield os.path.join(directory, "s.sock")
