"""compat.socketserver: the same names, hooks and behaviour as the stdlib module."""

from __future__ import annotations

import os
import socket
import socketserver as stdlib_socketserver
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import compat
import compat.socketserver
from compat import SocketServer

from .support import DEADLINE, connect, recv_until_eof, serving, wait_until

ROOT = Path(__file__).resolve().parent.parent
NEWER_NAMES = {"ForkingUnixDatagramServer", "ForkingUnixStreamServer"}  # added in 3.12


def test_all_is_the_stdlib_all_plus_newer_names() -> None:
    assert set(compat.socketserver.__all__) == set(stdlib_socketserver.__all__) | NEWER_NAMES
    for name in compat.socketserver.__all__:
        assert getattr(compat.socketserver, name).__module__ == "socketserver"


def test_python2_name_has_the_same_objects() -> None:
    assert SocketServer.__all__ == compat.socketserver.__all__
    for name in [*compat.socketserver.__all__, "_SocketWriter", "__version__"]:
        assert getattr(SocketServer, name) is getattr(compat.socketserver, name)


def test_class_attributes_match_the_stdlib() -> None:
    names = [
        "timeout", "address_family", "socket_type", "request_queue_size",
        "allow_reuse_address", "allow_reuse_port", "max_packet_size", "daemon_threads",
        "block_on_close", "max_children", "rbufsize", "wbufsize", "disable_nagle_algorithm",
    ]  # fmt: skip
    for class_name in stdlib_socketserver.__all__:
        ours = getattr(compat.socketserver, class_name)
        theirs = getattr(stdlib_socketserver, class_name)
        for attribute in names:
            if hasattr(theirs, attribute):
                assert getattr(ours, attribute) == getattr(theirs, attribute), (
                    class_name,
                    attribute,
                )


def test_package_imports_and_serves_with_the_stdlib_module_blocked() -> None:
    script = """
import sys, socket
sys.modules["socketserver"] = None
import compat, compat.socketserver as ss
from compat import SocketServer
class Echo(ss.StreamRequestHandler):
    def handle(self):
        self.wfile.write(self.rfile.readline())
with ss.ThreadingTCPServer(("127.0.0.1", 0), Echo) as server:
    with socket.create_connection(server.server_address, timeout=10) as client:
        client.sendall(b"blocked\\n")
        server.handle_request()
        print(client.recv(100).decode().strip())
assert sys.modules["socketserver"] is None
"""
    completed = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "blocked"


HOOKS = [
    "server_bind", "server_activate", "get_request", "verify_request", "process_request",
    "process_request_thread", "finish_request", "handle_error", "handle_timeout",
    "collect_children", "shutdown_request", "close_request", "server_close",
]  # fmt: skip


def shown(value: Any) -> Any:
    """A hook argument as the log records it: what differs between runs is masked."""
    if isinstance(value, socket.socket):
        return "<socket>"
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], socket.socket):
        return (value[0], "<socket>")  # a datagram request: (data, socket)
    if isinstance(value, tuple) and value[:1] == ("127.0.0.1",):
        return "<client address>"
    return value


def recording(base: type, calls: list[tuple[Any, ...]]) -> type:
    """A subclass of `base` that records every hook call with its arguments."""

    def wrap(name: str) -> Any:
        def hook(self: Any, *args: Any, **kwargs: Any) -> Any:
            calls.append((name, *map(shown, args), *sorted(kwargs.items())))
            return getattr(super(cls, self), name)(*args, **kwargs)

        return hook

    hooks = {name: wrap(name) for name in HOOKS if hasattr(base, name)}
    cls: type = type("Recording", (base,), hooks)
    return cls


class Failing(compat.socketserver.BaseRequestHandler):
    """Echoes a request, or raises if it says b"fail" (stream or datagram)."""

    def handle(self) -> None:
        if isinstance(self.request, tuple):
            data, sock = self.request
        else:
            data, sock = self.request.recv(100), None
        if data == b"fail":
            raise ValueError("handler failed")
        if sock is None:
            self.request.sendall(data)
        else:
            sock.sendto(data, self.client_address)


def exchange(server: Any, payload: bytes) -> bytes:
    """Send `payload` to `server`, let it handle one request, return what came back."""
    if server.socket_type == socket.SOCK_DGRAM:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.settimeout(0.5 if payload == b"fail" else DEADLINE)
            client.sendto(payload, server.server_address)
            server.handle_request()
            try:
                return client.recv(100)
            except TimeoutError:
                return b""
    with connect(server.server_address) as client:
        client.sendall(payload)
        server.handle_request()
        return recv_until_eof(client)


@pytest.mark.parametrize(
    "class_name",
    ["TCPServer", "UDPServer", "ThreadingTCPServer", "ThreadingUDPServer", "ForkingTCPServer"],
)
@pytest.mark.parametrize("payload", [b"ok", b"fail"])
def test_hooks_are_called_like_the_stdlib(
    class_name: str, payload: bytes, capsys: pytest.CaptureFixture[str], composerv_no_leaks: None
) -> None:
    logs = []
    for module in (stdlib_socketserver, compat.socketserver):
        calls: list[tuple[Any, ...]] = []
        server = recording(getattr(module, class_name), calls)(("127.0.0.1", 0), Failing)
        reply = exchange(server, payload)
        server.timeout = 0.01
        server.handle_request()  # no client: handle_timeout
        server.server_close()
        assert reply == (b"" if payload == b"fail" else payload)
        logs.append(calls)
    if class_name.startswith(("Threading", "Forking")):
        # Request threads run beside the server's thread: compare what was called,
        # not the interleaving. (A forked child's calls happen in the child.)
        assert sorted(map(repr, logs[0])) == sorted(map(repr, logs[1]))
    else:
        assert logs[0] == logs[1]
    names = [call[0] for call in logs[1]]
    assert names[:2] == ["server_bind", "server_activate"]
    assert "process_request" in names
    assert "handle_timeout" in names
    if payload == b"fail" and not class_name.startswith("Forking"):
        assert "handle_error" in names
        err = capsys.readouterr().err
        assert err.count("ValueError: handler failed") == 2  # both print the traceback
        assert "Exception occurred during processing of request from ('127.0.0.1'," in err


def test_shutdown_is_prompt_and_safe_without_a_loop(composerv_no_leaks: None) -> None:
    server = compat.socketserver.TCPServer(("127.0.0.1", 0), Failing)
    server.shutdown()  # the stdlib would block forever here
    thread = threading.Thread(target=server.serve_forever, args=(60,))
    thread.start()
    thread.join(DEADLINE)  # the earlier shutdown makes serve_forever return at once
    assert not thread.is_alive()
    thread = threading.Thread(target=server.serve_forever, args=(60,))
    thread.start()
    wait_until(lambda: server._BaseServer__loop.running, "serve_forever to start")  # type: ignore[attr-defined]
    started = time.monotonic()
    server.shutdown()  # poll_interval is 60 s: only the wake-up can stop it this fast
    assert time.monotonic() - started < 5
    thread.join(DEADLINE)
    server.server_close()


def test_threading_mixin_tracks_only_live_threads(composerv_no_leaks: None) -> None:
    release = threading.Event()

    class Waits(compat.socketserver.BaseRequestHandler):
        def handle(self) -> None:
            release.wait(DEADLINE)

    server = compat.socketserver.ThreadingTCPServer(("127.0.0.1", 0), Waits)
    with serving(server, poll_interval=0.05):
        clients = [connect(server.server_address) for _ in range(3)]
        wait_until(lambda: len(server._threads) == 3, "three request threads")
        release.set()
        wait_until(lambda: len(server._threads) == 0, "the request threads to end")
        for client in clients:
            client.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forking_mixin_reaps_only_its_own_children(composerv_no_leaks: None) -> None:
    class Reply(compat.socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.sendall(str(os.getpid()).encode())

    other = os.fork()
    if other == 0:
        os._exit(7)  # a child the server did not start; it must not reap it
    server = compat.socketserver.ForkingTCPServer(("127.0.0.1", 0), Reply)
    try:
        assert server.active_children is None
        with connect(server.server_address) as client:
            server.handle_request()
            child = int(recv_until_eof(client))
        assert server.active_children == {child}
        server.server_close()  # block_on_close: waits for the child
        assert not server.active_children
    finally:
        _, status = os.waitpid(other, 0)
    assert os.waitstatus_to_exitcode(status) == 7


def test_unix_server_leaves_existing_paths_to_the_caller(
    unix_path: str, composerv_no_leaks: None
) -> None:
    """Like the stdlib, compat neither replaces a stale socket path nor removes its own."""
    with compat.socketserver.UnixStreamServer(unix_path, Failing) as server:
        assert server.server_address == unix_path
    assert os.path.exists(unix_path)
    with pytest.raises(OSError):
        compat.socketserver.UnixStreamServer(unix_path, Failing)
    os.unlink(unix_path)


def test_datagram_longer_than_max_packet_size_is_dropped_and_logged(
    caplog: pytest.LogCaptureFixture,
    composerv_no_leaks: None,
) -> None:
    received: list[bytes] = []

    class Collect(compat.socketserver.DatagramRequestHandler):
        def handle(self) -> None:
            received.append(self.rfile.read())

    with compat.socketserver.UDPServer(("127.0.0.1", 0), Collect) as server:
        server.timeout = DEADLINE
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.sendto(b"x" * (server.max_packet_size + 1), server.server_address)
            client.sendto(b"small", server.server_address)
            with caplog.at_level("WARNING", logger="composerv"):
                server.handle_request()  # the long one: dropped
            server.handle_request()
    assert received == [b"small"]
    assert "longer than max_datagram_size=8192" in caplog.text


def test_threading_mixin_reads_block_on_close_when_closing(composerv_no_leaks: None) -> None:
    release = threading.Event()
    started = threading.Event()

    class Waits(compat.socketserver.BaseRequestHandler):
        def handle(self) -> None:
            started.set()
            release.wait(DEADLINE)

    server = compat.socketserver.ThreadingTCPServer(("127.0.0.1", 0), Waits)
    with connect(server.server_address) as client:
        server.handle_request()
        assert started.wait(DEADLINE)
        server.block_on_close = False  # set on the instance after the thread started
        server.server_close()  # must not wait for the blocked request thread
        assert len(server._threads) == 1
        release.set()
        wait_until(lambda: len(server._threads) == 0, "the request thread to end")
        assert client.recv(10) == b""
