"""`serving`: a server running in a thread for the length of a with-block."""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from typing import Protocol, TypeVar

from ._leaks import DEFAULT_SETTLE, no_leaks
from ._wait import DEFAULT_TIMEOUT, CatchingThread, call_within, wait_until

__all__ = ["S", "Servable", "ServingFactory", "serving"]


class Servable(Protocol):
    """What `serving` runs: a `composerv.Server`, a `composerv.compat.socketserver`
    server, or a stdlib ``socketserver`` one."""

    def serve_forever(self, poll_interval: float = ...) -> None:
        """Serve until `shutdown`."""

    def shutdown(self) -> None:
        """Make `serve_forever` return, and wait for it."""

    def server_close(self) -> None:
        """Close the listening socket and release what the server holds."""


S = TypeVar("S", bound=Servable)


class ServingFactory(Protocol):
    """The ``composerv_serving`` fixture: `serving` for the rest of a test.

    Annotate a test's argument with it::

        def test_echo(composerv_serving: ServingFactory) -> None:
            server = composerv_serving(serve(tcp(("127.0.0.1", 0)), threaded(), echo))
    """

    def __call__(
        self,
        server: S,
        *,
        poll_interval: float = ...,
        timeout: float = ...,
        check_leaks: bool = ...,
        settle: float = ...,
    ) -> S:
        """Start serving `server` (see `serving`); it stops at the test's teardown."""
        ...


@contextlib.contextmanager
def serving(
    server: S,
    *,
    poll_interval: float = 0.5,
    timeout: float = DEFAULT_TIMEOUT,
    check_leaks: bool = True,
    settle: float = DEFAULT_SETTLE,
) -> Generator[S, None, None]:
    """Run ``server.serve_forever(poll_interval)`` in a thread while the block runs.

    On entry it waits (up to `timeout` seconds, polling ``server.serving`` where the
    server has it) until the server serves; the socket listens from the moment
    the server is made, so clients may connect at once. On exit it calls
    ``shutdown()`` and ``server_close()``, and joins the thread, each within
    `timeout` seconds; an error that ``serve_forever`` raised is raised here. With
    `check_leaks` (the default) it then fails, as `no_leaks` does, if descriptors,
    threads or child processes made during the block are still there after
    `settle` seconds: the server left them behind (or the block did). ::

        server = serve(tcp(("127.0.0.1", 0)), threaded(), stream_handler(echo))
        with serving(server):
            with socket.create_connection(server.address, timeout=10) as client:
                client.sendall(b"hi")
                assert client.recv(2) == b"hi"

    A failure names what hung or leaked in an `AssertionError`.
    """
    leaks = no_leaks(settle=settle) if check_leaks else contextlib.nullcontext()
    with leaks:
        thread = CatchingThread(
            lambda: server.serve_forever(poll_interval), "composerv-testing-serve-forever"
        )
        thread.start()
        try:
            wait_until(
                lambda: not thread.is_alive() or getattr(server, "serving", True),
                f"{server!r} to serve",
                timeout,
            )
            thread.raise_error()
            yield server
        finally:
            try:
                call_within(server.shutdown, timeout, f"shutdown() of {server!r}")
                thread.join(timeout)
            finally:
                server.server_close()
        if thread.is_alive():
            raise AssertionError(f"serve_forever() did not return within {timeout}s of shutdown()")
        thread.raise_error()
