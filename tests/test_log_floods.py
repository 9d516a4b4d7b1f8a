"""Floods do not become floods of log lines (issue 16, finding 6).

Each server logs the ends of its requests as episodes (`Outcomes`): the first of a
kind (per client host; per bug for a handler's errors) is logged, the rest are
counted, and the count is logged with a later event of its kind or as the server
closes. A peer's fault is one WARNING line with no traceback; a handler's bug keeps
its traceback, once.
"""

from __future__ import annotations

import logging
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

import pytest

from composerv import (
    Connection,
    Datagram,
    datagram_handler,
    datagrams,
    evented,
    message_handler,
    serve,
    stream_handler,
    sync,
    tcp,
    threaded,
    udp,
    unix_datagram,
)
from composerv._episodes import Episodes

from .support import DEADLINE, connect, serving, wait_until

FLOOD = 200
"""Events in each flood."""

DATAGRAM_SERVERS = [
    pytest.param(lambda: (sync(), datagram_handler(lambda d: d.reply(b"pong"))), id="sync"),
    pytest.param(lambda: (threaded(), datagram_handler(lambda d: d.reply(b"pong"))), id="threaded"),
    pytest.param(
        lambda: (evented(), message_handler(lambda m: b"pong", datagrams())), id="evented"
    ),
]


def composerv_lines(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "composerv" and r.levelno >= level]


def assert_counted(lines: list[logging.LogRecord], events: int) -> None:
    """`lines` are an episode of `events`: its first line, then (the server closed) the
    count of the others."""
    assert "more like it" not in lines[0].getMessage()
    assert f"({events - 1} more like it since the last line" in lines[1].getMessage()


@pytest.mark.parametrize("server", DATAGRAM_SERVERS)
def test_datagrams_from_an_unbound_unix_client_are_one_warning(
    server: Callable[[], tuple[Any, Any]],
    unix_path: str,
    caplog: pytest.LogCaptureFixture,
    composerv_no_leaks: None,
) -> None:
    made = serve(unix_datagram(unix_path), *server())
    with (
        caplog.at_level(logging.INFO, logger="composerv"),
        serving(made),
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as unbound,
    ):
        for _ in range(FLOOD):
            unbound.sendto(b"ping", unix_path)
        wait_until(
            lambda: any("unbound unix datagram client" in r.getMessage() for r in caplog.records),
            "the unanswerable datagrams to be logged",
        )
        # A bound client after the flood is still answered: the flood was served.
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as bound:
            bound.bind(unix_path + ".client")
            bound.settimeout(DEADLINE)
            bound.sendto(b"ping", unix_path)
            assert bound.recv(16) == b"pong"
    lines = composerv_lines(caplog, logging.WARNING)
    assert [r.levelno for r in lines] == [logging.WARNING] * 2, [r.getMessage() for r in lines]
    assert_counted(lines, FLOOD)
    assert lines[0].exc_info is None


def test_oversized_datagrams_are_one_warning(
    caplog: pytest.LogCaptureFixture, composerv_no_leaks: None
) -> None:
    def pong(datagram: Datagram) -> None:
        datagram.reply(b"pong")

    made = serve(udp(("127.0.0.1", 0), max_datagram_size=16), sync(), datagram_handler(pong))
    with (
        caplog.at_level(logging.INFO, logger="composerv"),
        serving(made) as running,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client,
    ):
        client.settimeout(DEADLINE)
        for _ in range(FLOOD):
            client.sendto(b"x" * 17, running.address)
        client.sendto(b"ok", running.address)
        assert client.recv(16) == b"pong"  # after every oversized one, in order
    lines = composerv_lines(caplog, logging.WARNING)
    assert len(lines) == 2, [r.getMessage() for r in lines]
    assert "longer than max_datagram_size=16" in lines[0].getMessage()
    assert_counted(lines, FLOOD)


def test_a_handler_bug_hit_by_every_client_is_one_traceback_and_another_bug_one_more(
    caplog: pytest.LogCaptureFixture, composerv_no_leaks: None
) -> None:
    def buggy(conn: Connection) -> None:
        line = conn.readline()
        if line == b"other\n":
            raise KeyError("the other bug")
        raise ValueError("the same bug")

    made = serve(tcp(("127.0.0.1", 0)), threaded(), stream_handler(buggy))
    with caplog.at_level(logging.INFO, logger="composerv"), serving(made) as running:
        for line in [b"x\n"] * (FLOOD // 4) + [b"other\n"] * 3:
            with connect(running.address) as client:
                client.sendall(line)
                assert client.recv(1) == b""
        wait_until(lambda: running.active_requests == 0, "the requests to end")
    errors = composerv_lines(caplog, logging.ERROR)
    assert sorted(type(r.exc_info[1]).__name__ for r in errors if r.exc_info) == [
        "KeyError",
        "ValueError",
    ], [r.getMessage() for r in errors]


def test_clients_that_reset_are_one_info_line_per_host(
    caplog: pytest.LogCaptureFixture, composerv_no_leaks: None
) -> None:
    def flood(conn: Connection) -> None:
        conn.readline()
        while True:
            conn.send_all(b"x" * 65536)

    made = serve(tcp(("127.0.0.1", 0)), threaded(), stream_handler(flood))
    with caplog.at_level(logging.INFO, logger="composerv"), serving(made) as running:
        for _ in range(FLOOD // 4):
            client = connect(running.address)
            client.sendall(b"go\n")
            client.recv(1)
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()  # a reset, mid-reply
        wait_until(lambda: running.active_requests == 0, "the server to notice")
    gone = [r for r in caplog.records if "went away" in r.getMessage()]
    assert len(gone) <= 2, [r.getMessage() for r in gone]  # a reset, or a broken pipe
    assert all(r.levelno == logging.INFO and r.exc_info is None for r in gone)


def test_an_episode_that_ends_is_counted_with_the_next_event_of_its_kind(
    caplog: pytest.LogCaptureFixture,
) -> None:
    episodes = Episodes(quiet=0.2)
    with caplog.at_level(logging.WARNING, logger="composerv"):
        for _ in range(3):
            episodes.occurred("a", "%s floods", "a")
        time.sleep(0.3)  # a's episode is over: nothing of it for its quiet time
        episodes.occurred("b", "%s floods", "b")
        episodes.occurred("b", "%s floods", "b")
        episodes.forget("b")  # b is gone: its count is logged too
    lines = [r.getMessage() for r in caplog.records]
    assert [line.split(" (")[0] for line in lines] == ["a floods"] * 2 + ["b floods"] * 2
    assert "(2 more like it since the last line, the last 0 s ago)" in lines[1]
    assert "(1 more like it since the last line" in lines[3]
