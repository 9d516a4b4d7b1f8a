"""The pytest plugin: composerv.testing's helpers as fixtures.

Installed with composerv (the ``pytest11`` entry point ``composerv``), so any
project that has composerv and pytest gets these fixtures with no set-up. Their
names start with ``composerv_`` (or say what they give, ``free_tcp_port``), so
they do not shadow a project's own. Disable the plugin with ``-p no:composerv``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from ._leaks import DEFAULT_SETTLE, Resources, no_leaks
from ._ports import free_port
from ._serving import S, ServingFactory, serving
from ._tls import TLSContexts, certificate_maker, tls_contexts
from ._wait import DEFAULT_TIMEOUT

__all__ = ["composerv_no_leaks", "composerv_serving", "composerv_tls", "free_tcp_port"]


class _Servers:
    """The ``composerv_serving`` factory: the servers it started, stopped in reverse."""

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()

    def __call__(
        self,
        server: S,
        *,
        poll_interval: float = 0.5,
        timeout: float = DEFAULT_TIMEOUT,
        check_leaks: bool = True,
        settle: float = DEFAULT_SETTLE,
    ) -> S:
        running = serving(
            server,
            poll_interval=poll_interval,
            timeout=timeout,
            check_leaks=check_leaks,
            settle=settle,
        )
        return self._stack.enter_context(running)

    def close(self) -> None:
        """Stop every server started, the last first; safe to call again."""
        self._stack.close()


@pytest.fixture
def composerv_no_leaks(request: pytest.FixtureRequest) -> Iterator[Resources]:
    """Fail the test (at teardown) if it leaves descriptors, threads or child
    processes behind; see `composerv.testing.no_leaks`. Gives the snapshot taken
    before the test.

    The servers of ``composerv_serving`` are stopped before the check, whatever
    the order in which the test names the two fixtures."""
    servers = None
    if "composerv_serving" in request.fixturenames:
        servers = request.getfixturevalue("composerv_serving")
    with no_leaks() as before:
        yield before
        if servers is not None:
            servers.close()


@pytest.fixture
def composerv_serving() -> Iterator[ServingFactory]:
    """``composerv_serving(server, **options)`` runs `server` as
    `composerv.testing.serving` does, for the rest of the test, and returns it.

    At teardown each server is shut down and closed (the last started first), and
    the teardown fails if one hung or left resources behind::

        def test_echo(composerv_serving):
            server = composerv_serving(serve(tcp(("127.0.0.1", 0)), threaded(), echo))
            ...
    """
    servers = _Servers()
    try:
        yield servers
    finally:
        servers.close()


@pytest.fixture
def composerv_tls() -> TLSContexts:
    """New ``(server, client)`` TLS contexts for a test certificate of 127.0.0.1, ::1
    and localhost (see `composerv.testing.tls_contexts`); the test is skipped on a
    machine that has neither trustme nor the openssl command."""
    if certificate_maker() is None:
        pytest.skip("making a test certificate needs trustme or the openssl command")
    return tls_contexts()


@pytest.fixture
def free_tcp_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago; racy, see
    `composerv.testing.free_port`: prefer port 0 and ``server.address``."""
    return free_port()
