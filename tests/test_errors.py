"""Bad input and configuration get clear exceptions; handler failures are logged and survived."""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

import pytest

from composerv import (
    ComposervError,
    ConfigurationError,
    ConfigurationTypeError,
    Connection,
    Datagram,
    HandlerMismatchError,
    SocketPathInUseError,
    datagram_handler,
    forking,
    limits,
    serve,
    stream_handler,
    sync,
    tcp,
    threaded,
    udp,
    unix_datagram,
    unix_stream,
)

from .support import DEADLINE, connect, recv_exactly, serving, wait_until


def echo_line(conn: Connection) -> None:
    conn.send_all(conn.readline())


WRONG_TYPE = ConfigurationTypeError
WRONG_VALUE = ConfigurationError


@pytest.mark.parametrize(
    ("address", "error", "message"),
    [
        (
            "127.0.0.1:80",
            WRONG_TYPE,
            r"address must be a \(host, port\) tuple, not '127.0.0.1:80'.*transport_from_url",
        ),
        (("127.0.0.1",), WRONG_VALUE, r"must be a \(host, port\) tuple"),
        ((1, 80), WRONG_TYPE, r"host must be a str, not 1"),
        (("127.0.0.1", "80"), WRONG_TYPE, r"port must be an int, not '80'"),
        (("127.0.0.1", True), WRONG_TYPE, r"port must be an int, not True"),
        (("127.0.0.1", 70000), WRONG_VALUE, r"between 0 and 65535 .*not 70000"),
        (("127.0.0.1", -1), WRONG_VALUE, r"between 0 and 65535 .*not -1"),
        (("127.0.0.300", 80), WRONG_VALUE, r"'127.0.0.300' is not a valid IPv4 or IPv6 address"),
        (("::zz", 80), WRONG_VALUE, r"'::zz' is not a valid IPv4 or IPv6 address"),
        (("[::1]", 80), WRONG_VALUE, r"must not have brackets; write '::1'"),
        (("bad_host!", 80), WRONG_VALUE, r"'bad_host!' is not a valid host name"),
        (("127.0.0.1", 80, 0, 0), WRONG_VALUE, r"4-tuple address is for IPv6 hosts only"),
        (("::1", 80, -1, 0), WRONG_VALUE, r"flowinfo must be a non-negative int, not -1"),
    ],
)
def test_bad_inet_addresses_are_named(address: Any, error: type[Exception], message: str) -> None:
    for factory in (tcp, udp):
        with pytest.raises(error, match=message):
            factory(address)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"backlog": 0}, WRONG_VALUE, "backlog must be a positive int, not 0"),
        ({"backlog": "128"}, WRONG_TYPE, "backlog must be a positive int, not str '128'"),
        (
            {"reuse_address": "yes"},
            WRONG_TYPE,
            "reuse_address must be True or False, not str 'yes'",
        ),
        ({"nodelay": 1}, WRONG_TYPE, "nodelay must be True, False or None, not int 1"),
    ],
)
def test_bad_tcp_options_are_named(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        tcp(("127.0.0.1", 0), **options)


def test_bad_concurrency_options_are_named() -> None:
    with pytest.raises(WRONG_VALUE, match="max_children must be a positive int, not -3"):
        forking(max_children=-3)
    with pytest.raises(WRONG_TYPE, match="daemon must be True or False, not str 'no'"):
        threaded(daemon="no")  # type: ignore[arg-type]


def test_wrong_types_are_type_errors_and_wrong_values_value_errors() -> None:
    """What users already catch keeps working: TypeError and ValueError, both ComposervError."""
    assert issubclass(WRONG_TYPE, TypeError) and issubclass(WRONG_TYPE, ComposervError)
    assert issubclass(WRONG_VALUE, ValueError) and issubclass(WRONG_VALUE, ComposervError)
    with pytest.raises(TypeError):
        limits(idle_timeout="5")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        limits(idle_timeout=-5)


def test_unix_path_too_long() -> None:
    path = "/tmp/" + "x" * 200
    with pytest.raises(WRONG_VALUE, match="over the 107-byte limit"):
        unix_stream(path)
    with pytest.raises(WRONG_VALUE, match="path must not be empty"):
        unix_datagram("")
    with pytest.raises(WRONG_TYPE, match=r"path must be a str or os\.PathLike"):
        unix_stream(42)  # type: ignore[arg-type]


def test_handler_must_be_callable() -> None:
    with pytest.raises(WRONG_TYPE, match="fn must be callable, not str 'echo'"):
        stream_handler("echo")  # type: ignore[arg-type]
    with pytest.raises(WRONG_TYPE, match="fn must be callable, not NoneType"):
        datagram_handler(None)  # type: ignore[arg-type]


def test_serve_rejects_a_mismatch_at_run_time() -> None:
    with pytest.raises(HandlerMismatchError, match=r"stream handler cannot serve the datagram"):
        serve(udp(("127.0.0.1", 0)), sync(), stream_handler(echo_line))  # type: ignore[call-overload]
    with pytest.raises(HandlerMismatchError, match=r"use stream_handler\(fn\)"):
        serve(tcp(("127.0.0.1", 0)), sync(), datagram_handler(print))  # type: ignore[call-overload]


def test_serve_rejects_values_of_the_wrong_kind() -> None:
    with pytest.raises(TypeError, match=r"transport must be a Transport value .*not tuple"):
        serve(("127.0.0.1", 0), sync(), stream_handler(echo_line))  # type: ignore[call-overload]
    with pytest.raises(TypeError, match=r"concurrency must be a Concurrency value .*not str"):
        serve(tcp(("127.0.0.1", 0)), "threaded", stream_handler(echo_line))  # type: ignore[call-overload]
    with pytest.raises(TypeError, match=r"handler must be a Handler value .*not function"):
        serve(tcp(("127.0.0.1", 0)), sync(), echo_line)  # type: ignore[call-overload]


def test_address_in_use_is_an_oserror_and_leaks_nothing(composerv_no_leaks: None) -> None:
    with serve(tcp(("127.0.0.1", 0)), sync(), stream_handler(echo_line)) as first:
        with pytest.raises(OSError, match="Address already in use"):
            serve(tcp(first.address, reuse_address=False), sync(), stream_handler(echo_line))


@pytest.mark.parametrize("concurrency", [sync, threaded], ids=["sync", "threaded"])
def test_handler_exception_is_logged_with_peer_and_survived(
    concurrency: Any, caplog: pytest.LogCaptureFixture, composerv_no_leaks: None
) -> None:
    def picky(conn: Connection) -> None:
        line = conn.readline()
        if line == b"boom\n":
            raise ValueError("the handler failed")
        conn.send_all(line)

    server = serve(tcp(("127.0.0.1", 0)), concurrency(), stream_handler(picky))
    with caplog.at_level(logging.ERROR, logger="composerv"), serving(server):
        with connect(server.address) as bad:
            bad.sendall(b"boom\n")
            assert bad.recv(1) == b"", "the failing connection is closed"
            local_port = bad.getsockname()[1]
        with connect(server.address) as good:
            good.sendall(b"fine\n")
            assert recv_exactly(good, 5) == b"fine\n"
        wait_until(lambda: len(caplog.records) >= 1, "the error to be logged")
    [record] = caplog.records
    assert f"127.0.0.1:{local_port}" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[0] is ValueError


def test_stale_unix_socket_is_replaced(
    unix_path: str, caplog: pytest.LogCaptureFixture, composerv_no_leaks: None
) -> None:
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(unix_path)
    dead.close()  # a crashed server leaves its path behind
    with caplog.at_level(logging.INFO, logger="composerv"):
        with serve(unix_stream(unix_path), sync(), stream_handler(echo_line)) as server:
            assert server.address == unix_path
    assert "stale unix socket" in caplog.text


def test_live_unix_socket_is_not_stolen(unix_path: str, composerv_no_leaks: None) -> None:
    with serve(unix_stream(unix_path), sync(), stream_handler(echo_line)):
        with pytest.raises(SocketPathInUseError, match="another server is listening"):
            serve(unix_stream(unix_path), sync(), stream_handler(echo_line))
        assert os.path.exists(unix_path)


def test_regular_file_is_never_replaced(unix_path: str, composerv_no_leaks: None) -> None:
    with open(unix_path, "w") as f:
        f.write("precious")
    with pytest.raises(FileExistsError, match="exists and is not a socket"):
        serve(unix_stream(unix_path), sync(), stream_handler(echo_line))
    with open(unix_path) as f:
        assert f.read() == "precious"


def test_oversized_datagram_is_dropped_and_logged(
    caplog: pytest.LogCaptureFixture, composerv_no_leaks: None
) -> None:
    received: list[bytes] = []

    def record(datagram: Datagram) -> None:
        received.append(datagram.data)
        datagram.reply(b"ok")

    server = serve(udp(("127.0.0.1", 0), max_datagram_size=16), sync(), datagram_handler(record))
    with caplog.at_level(logging.WARNING, logger="composerv"), serving(server):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.settimeout(DEADLINE)
            client.sendto(b"x" * 17, server.address)
            client.sendto(b"y" * 16, server.address)  # exactly the limit: accepted
            assert client.recv(16) == b"ok"
    assert received == [b"y" * 16]
    assert "longer than max_datagram_size=16" in caplog.text


def test_reply_to_an_unbound_unix_peer_says_why(unix_path: str, composerv_no_leaks: None) -> None:
    errors: list[str] = []

    def reply(datagram: Datagram) -> None:
        try:
            datagram.reply(b"answer")
        except ValueError as exc:
            errors.append(str(exc))

    with serve(unix_datagram(unix_path), sync(), datagram_handler(reply)) as server:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as client:
            client.sendto(b"question", unix_path)
            server.handle_request(timeout=DEADLINE)
    assert errors and "must bind()" in errors[0]
