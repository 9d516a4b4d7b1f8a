"""Stdlib modules built on socketserver, running on compat.socketserver instead.

``http.server`` and ``xmlrpc.server`` are imported fresh while compat is installed
as ``sys.modules["socketserver"]`` (with the stdlib module blocked); everything is
put back afterwards so other tests see the ordinary modules.
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import importlib
import os
import sys
import threading
import types
import xmlrpc.client
from collections.abc import Iterator
from pathlib import Path

import pytest

import compat.socketserver

from .support import DEADLINE, serving, wait_until


@contextlib.contextmanager
def imported_on_compat(name: str) -> Iterator[types.ModuleType]:
    """Import module `name` afresh with compat installed as ``socketserver``; undo it after."""
    parent_name, _, child = name.rpartition(".")
    parent = importlib.import_module(parent_name)
    saved = {key: sys.modules.get(key) for key in ("socketserver", name)}
    saved_attribute = getattr(parent, child, None)
    sys.modules.pop(name, None)
    sys.modules["socketserver"] = compat.socketserver
    try:
        module = importlib.import_module(name)
        assert module.socketserver is compat.socketserver  # type: ignore[attr-defined]
        yield module
    finally:
        for key, value in saved.items():
            if value is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = value
        if saved_attribute is None:
            with contextlib.suppress(AttributeError):
                delattr(parent, child)
        else:
            setattr(parent, child, saved_attribute)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "hello.txt").write_bytes(b"hello from compat\n")
    return tmp_path


def get(address: tuple[str, int], path: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(address[0], address[1], timeout=DEADLINE)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


class QuietFiles(http.server.SimpleHTTPRequestHandler):
    """Serves files without writing an access log line to stderr per request."""

    def log_message(self, format: str, *args: object) -> None:  # the stdlib names it "format"
        pass


@pytest.mark.parametrize("server_name", ["HTTPServer", "ThreadingHTTPServer"])
def test_http_server_serves_files_on_compat(
    server_name: str, site: Path, composerv_no_leaks: None
) -> None:
    with imported_on_compat("http.server") as module:
        server_class = getattr(module, server_name)
        assert issubclass(server_class, compat.socketserver.TCPServer)
        handler = type(
            "Files",
            (module.SimpleHTTPRequestHandler,),
            {"log_message": QuietFiles.log_message},
        )
        server = server_class(("127.0.0.1", 0), lambda *a: handler(*a, directory=os.fspath(site)))
        with serving(server, poll_interval=0.05):
            host, port = server.server_address[:2]
            assert server.server_port == port  # set by HTTPServer.server_bind on compat's
            assert get((host, port), "/hello.txt") == (200, b"hello from compat\n")
            status, _ = get((host, port), "/missing.txt")
            assert status == 404
    assert "http.server" not in sys.modules or sys.modules["http.server"] is http.server


def test_xmlrpc_server_answers_calls_on_compat(composerv_no_leaks: None) -> None:
    with imported_on_compat("xmlrpc.server") as module:
        server = module.SimpleXMLRPCServer(("127.0.0.1", 0), logRequests=False)
        assert isinstance(server, compat.socketserver.TCPServer)
        server.register_function(lambda a, b: a + b, "add")
        server.register_introspection_functions()
        with serving(server, poll_interval=0.05):
            host, port = server.server_address[:2]
            with xmlrpc.client.ServerProxy(f"http://{host}:{port}/") as proxy:
                assert proxy.add(2, 40) == 42
                assert "add" in proxy.system.listMethods()
                with pytest.raises(xmlrpc.client.Fault):
                    proxy.no_such_method()


def test_compat_threading_mixin_on_a_stdlib_http_server(
    site: Path, composerv_no_leaks: None
) -> None:
    """An import-only migration leaves compat's mixin on a stdlib-derived class."""

    class Server(compat.socketserver.ThreadingMixIn, http.server.HTTPServer):
        pass

    served_in: list[str] = []

    class Files(QuietFiles):
        def do_GET(self) -> None:
            served_in.append(threading.current_thread().name)
            super().do_GET()

    server = Server(("127.0.0.1", 0), lambda *a: Files(*a, directory=os.fspath(site)))
    with serving(server, poll_interval=0.05):
        assert get(server.server_address, "/hello.txt") == (200, b"hello from compat\n")
        wait_until(lambda: len(server._threads) == 0, "the request thread to end")
    assert served_in and served_in[0] != threading.current_thread().name


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_compat_forking_mixin_on_a_stdlib_http_server(site: Path, composerv_no_leaks: None) -> None:
    class Server(compat.socketserver.ForkingMixIn, http.server.HTTPServer):
        pass

    server = Server(("127.0.0.1", 0), lambda *a: QuietFiles(*a, directory=os.fspath(site)))
    with serving(server, poll_interval=0.05):
        assert get(server.server_address, "/hello.txt") == (200, b"hello from compat\n")
    assert not server.active_children
