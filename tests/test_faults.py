"""Misbehaving clients and failing handlers: each is logged once, everyone else is served."""

from __future__ import annotations

import logging
import os
import socket
import struct
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest

from composerv import Connection, evented, limits, message_handler, serve, stream_handler, tcp

from .reliability import CONCURRENCIES, IN_PROCESS, run_clients
from .support import DEADLINE, connect, recv_exactly, recv_until_eof, serving, wait_until

# A forked child inherits the test's own client sockets, so closing (or resetting)
# a client in the test does not end the connection that child serves: short
# deadlines make those children give up quickly instead of at the drain deadline.
FAULT_LIMITS = limits(read_timeout=0.5, write_timeout=0.5)


def sum_lines(conn: Connection) -> None:
    """A strict line protocol: b"a b\\n" -> b"<a+b>\\n"; b"big\\n" -> 8 MiB; bad input raises."""
    while line := conn.readline():
        if line == b"bye\n":
            conn.send_all(line)
            return
        if line == b"big\n":
            conn.send_all(b"x" * (8 << 20))
            continue
        a, b = line.split()
        conn.send_all(b"%d\n" % (int(a) + int(b)))


def sum_message(message: bytes) -> bytes:
    """`sum_lines` as a message function, for evented(): one line in, one line out."""
    if message in (b"bye", b"big"):
        return message if message == b"bye" else b"x" * (8 << 20)
    a, b = message.split()
    return b"%d" % (int(a) + int(b))


SERVERS = [
    *(
        pytest.param(
            lambda concurrency=param.values[0]: serve(
                tcp(("127.0.0.1", 0)),
                concurrency(),
                stream_handler(sum_lines),
                limits=FAULT_LIMITS,
            ),
            id=param.id,
        )
        for param in CONCURRENCIES
    ),
    pytest.param(
        lambda: serve(
            tcp(("127.0.0.1", 0)), evented(), message_handler(sum_message), limits=FAULT_LIMITS
        ),
        id="evented",
    ),
]
"""The same protocol under every blocking concurrency and under evented()."""


def reset(sock: socket.socket) -> None:
    """Close with SO_LINGER 0, so the server sees a TCP reset instead of an orderly FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def good_client(address: Any) -> None:
    with connect(address) as sock:
        sock.sendall(b"2 3\n40 2\nbye\n")
        assert recv_exactly(sock, 9) == b"5\n42\nbye\n"


def misbehave(address: Any, kind: str) -> None:
    with connect(address) as sock:
        if kind == "reset-mid-reply":
            sock.sendall(b"big\n")
            recv_exactly(sock, 1000)  # the reply is under way
            reset(sock)
        elif kind == "reset-mid-request":
            sock.sendall(b"1 ")
            reset(sock)
        elif kind == "half-close":
            sock.sendall(b"1 1\n")
            sock.shutdown(socket.SHUT_WR)  # still reading: the reply must arrive
            assert recv_until_eof(sock) == b"2\n"
        elif kind == "garbage":
            sock.sendall(os.urandom(300).replace(b"\n", b"") + b"\n")
            assert recv_until_eof(sock) == b"", "the handler failed and the server closed"
        elif kind == "connect-and-leave":
            pass


FAULTS = ["reset-mid-reply", "reset-mid-request", "half-close", "garbage", "connect-and-leave"]


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("make_server", SERVERS)
def test_server_survives_a_misbehaving_client(
    make_server: Any, fault: str, composerv_no_leaks: None
) -> None:
    server = make_server()
    with serving(server):
        misbehave(server.address, fault)
        good_client(server.address)
        # and again: the fault left nothing behind that breaks the next client
        misbehave(server.address, fault)
        good_client(server.address)


@pytest.mark.parametrize("make_server", SERVERS)
def test_faults_mixed_with_good_clients_under_load(
    make_server: Any, composerv_no_leaks: None
) -> None:
    server = make_server()

    def client(i: int) -> None:
        if i % 2:
            misbehave(server.address, FAULTS[i // 2 % len(FAULTS)])
        else:
            good_client(server.address)

    with serving(server):
        run_clients(40, client)
        good_client(server.address)


@pytest.mark.parametrize(
    ("fault", "level", "text"),
    [
        ("reset-mid-reply", logging.INFO, "went away"),
        ("garbage", logging.ERROR, "error while serving"),
    ],
)
@pytest.mark.parametrize("concurrency", IN_PROCESS)
@pytest.mark.usefixtures("composerv_no_leaks")
def test_each_fault_is_logged_once_with_the_peer(
    concurrency: Any, fault: str, level: int, text: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A client going away is routine (INFO, no traceback); a handler error is an ERROR
    with its traceback; either way once, naming the peer."""
    server = serve(
        tcp(("127.0.0.1", 0)), concurrency(), stream_handler(sum_lines), limits=FAULT_LIMITS
    )
    with caplog.at_level(logging.DEBUG, logger="composerv"), serving(server):
        ports_before = len(caplog.records)
        misbehave(server.address, fault)
        wait_until(lambda: len(caplog.records) > ports_before, "the fault to be logged")
        good_client(server.address)
    records = [r for r in caplog.records if text in r.getMessage()]
    assert len(records) == 1, [r.getMessage() for r in caplog.records]
    [record] = records
    assert record.levelno == level
    assert "127.0.0.1:" in record.getMessage()
    assert (record.exc_info is not None) == (level == logging.ERROR)


EMFILE_MEASURED = 0.5
"""How long the established client counts its round trips during EMFILE (the
server's second of it begins as the client that cannot be accepted connects)."""

EMFILE_SERVER = textwrap.dedent(
    """
    import logging, os, resource, socket, sys, threading, time
    from composerv import (
        Connection, async_stream_handler, asyncio_loop, evented, message_handler, serve,
        stream_handler, tcp, threaded,
    )

    records = []
    class Keep(logging.Handler):
        def emit(self, record):
            records.append((record.levelname, record.getMessage()))
    logging.getLogger("composerv").addHandler(Keep())
    logging.getLogger("composerv").setLevel(logging.DEBUG)

    def echo(conn: Connection) -> None:
        while line := conn.readline():
            conn.send_all(line)

    async def async_echo(reader, writer):
        while line := await reader.readline():
            writer.write(line)
            await writer.drain()

    served = {
        "threaded": (threaded, stream_handler(echo)),
        "evented": (evented, message_handler(lambda line: line)),
        "asyncio": (asyncio_loop, async_stream_handler(async_echo)),
    }
    concurrency, handler = served[sys.argv[1]]
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    server = serve(tcp(("127.0.0.1", 0)), concurrency(), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,))
    thread.start()
    deadline = time.monotonic() + 10
    while not server.serving:  # its wake-up socket pair needs two descriptors
        assert time.monotonic() < deadline, "serve_forever did not start"
        time.sleep(0.001)
    print(server.address[1], flush=True)
    sys.stdin.readline()  # the test's established client has had its round trip
    hog = []
    try:
        while True:
            hog.append(os.open(os.devnull, os.O_RDONLY))
    except OSError:
        pass  # EMFILE: every descriptor is taken
    accepts = []
    accept = socket.socket.accept
    def counted(self):
        accepts.append(time.monotonic())
        return accept(self)
    socket.socket.accept = counted
    print("hogged", flush=True)
    sys.stdin.readline()  # the test has connected a client, which cannot be accepted
    time.sleep(1.0)  # count the loop's accept() calls over a second of EMFILE
    socket.socket.accept = accept
    attempts = len(accepts)
    for fd in hog:
        os.close(fd)
    sys.stdin.readline()  # the client was served once descriptors were free
    server.shutdown()
    thread.join()
    server.server_close()
    print(attempts, flush=True)
    for level, message in records:
        print(level, message, flush=True)
    """
)


@pytest.mark.parametrize("concurrency", ["threaded", "evented", "asyncio"])
def test_emfile_on_accept_backs_off_logs_once_and_recovers(concurrency: str) -> None:
    """Out of descriptors, accept() fails at once; the loop must not spin on it, and
    the clients already connected are served at full speed meanwhile (the back-off is
    a timer, not a sleep on the loop's thread)."""
    child = subprocess.Popen(
        [sys.executable, "-c", EMFILE_SERVER, concurrency],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    assert child.stdin is not None and child.stdout is not None

    def tell(line: str) -> None:
        assert child.stdin is not None
        child.stdin.write(line + "\n")
        child.stdin.flush()

    try:
        port = int(child.stdout.readline())
        with connect(("127.0.0.1", port)) as established:
            established.sendall(b"first\n")
            assert recv_exactly(established, 6) == b"first\n"
            tell("established")
            assert child.stdout.readline() == "hogged\n"
            with connect(("127.0.0.1", port)) as client:
                client.sendall(b"still there?\n")
                tell("connected")
                round_trips = 0
                measured = time.monotonic() + EMFILE_MEASURED
                while time.monotonic() < measured:
                    established.sendall(b"ping\n")
                    assert recv_exactly(established, 5) == b"ping\n"
                    round_trips += 1
                # served as soon as the child frees its descriptors (after its 1 s measurement)
                assert recv_exactly(client, 13) == b"still there?\n"
        tell("served")
        child.stdin.close()
        attempts = int(child.stdout.readline())
        log = child.stdout.read().splitlines()
        assert child.wait(DEADLINE) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
    # Backing off 0.1 s after each EMFILE makes ~10 accept() calls in the second; a
    # loop that spins makes hundreds of thousands, one that gave up makes none.
    assert 3 <= attempts <= 20, f"{attempts} accept() calls in 1s of EMFILE"
    # A loop that slept through each back-off answered 5-6 round trips a second.
    assert round_trips >= 50, f"{round_trips} round trips in {EMFILE_MEASURED}s of EMFILE"
    errors = [line for line in log if line.startswith("ERROR")]
    assert len(errors) == 1, log
    assert "Too many open files" in errors[0] and "127.0.0.1:" in errors[0]
    assert sum("accepting connections" in line and "again" in line for line in log) == 1, log
