"""Unix socket paths (issue 16, finding 6): a stale-path probe that never blocks,
taken under a lock so that two servers starting at once cannot both take a path,
and the socket file's mode, owner and group."""

from __future__ import annotations

import grp
import os
import socket
import stat
import threading
from collections.abc import Callable
from typing import Any

import pytest

from composerv import (
    ConfigurationError,
    ConfigurationTypeError,
    Connection,
    SocketPathInUseError,
    datagram_handler,
    serve,
    stream_handler,
    sync,
    unix_datagram,
    unix_stream,
)

from .support import DEADLINE, connect, recv_exactly, serving

ROUNDS = 20
"""Pairs of servers started at once on a stale path."""


def echo_line(conn: Connection) -> None:
    conn.send_all(conn.readline())


def make_stale(path: str) -> None:
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(path)
    dead.close()  # a crashed server leaves its path behind


def test_a_live_server_with_a_full_backlog_is_not_waited_for(
    unix_path: str, composerv_no_leaks: None
) -> None:
    """The probe's connect does not block when the live server's backlog is full."""
    live = serve(unix_stream(unix_path, backlog=1), sync(), stream_handler(echo_line))
    queued: list[socket.socket] = []
    try:
        # Not serving: connections stay in the backlog until it is full.
        while len(queued) < 64:
            client = socket.socket(socket.AF_UNIX)
            queued.append(client)
            client.setblocking(False)
            try:
                client.connect(unix_path)
            except BlockingIOError:
                break
        outcome: list[BaseException] = []

        def second() -> None:
            try:
                serve(unix_stream(unix_path), sync(), stream_handler(echo_line)).server_close()
            except SocketPathInUseError as exc:
                outcome.append(exc)

        thread = threading.Thread(target=second, name="second-server", daemon=True)
        thread.start()
        thread.join(DEADLINE)
        assert not thread.is_alive(), "the stale-path probe blocked on a full backlog"
        assert len(outcome) == 1
    finally:
        for client in queued:
            client.close()
        live.server_close()


def _start_in_a_child(path: str, status: int, release: tuple[int, int]) -> int:
    """Fork a child that serves `path` if it can; it writes b"1" (bound) or b"0"
    (refused) to `status`, and a bound one holds the path until the write end of the
    `release` pipe closes."""
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        os.close(release[1])  # the parent's to close
        try:
            server = serve(unix_stream(path), sync(), stream_handler(echo_line))
        except SocketPathInUseError:
            os.write(status, b"0")
            code = 0
        else:
            os.write(status, b"1")
            os.read(release[0], 1)  # hold the path until the parent has both answers
            server.server_close()
            code = 0
    finally:
        os._exit(code)


def test_two_servers_starting_at_once_on_a_stale_path_never_both_take_it(
    unix_path: str, composerv_no_leaks: None
) -> None:
    for _ in range(ROUNDS):
        make_stale(unix_path)
        status_r, status_w = os.pipe()
        release_r, release_w = os.pipe()
        pids = [_start_in_a_child(unix_path, status_w, (release_r, release_w)) for _ in range(2)]
        os.close(status_w)
        os.close(release_r)
        try:
            answers = b""
            with os.fdopen(status_r, "rb") as status:
                while len(answers) < 2 and (byte := status.read(1)):
                    answers += byte
            assert sorted(answers) == sorted(b"01"), f"both took the path: {answers!r}"
        finally:
            os.close(release_w)
            for pid in pids:
                _, code = os.waitpid(pid, 0)
                assert os.waitstatus_to_exitcode(code) == 0
        assert not os.path.exists(unix_path), "the server that took the path removes it"


def test_the_lock_file_stays_and_the_path_is_reused(
    unix_path: str, composerv_no_leaks: None
) -> None:
    for _ in range(2):
        with serving(serve(unix_stream(unix_path), sync(), stream_handler(echo_line))):
            with connect(unix_path) as client:
                client.sendall(b"hi\n")
                assert recv_exactly(client, 3) == b"hi\n"
        assert not os.path.exists(unix_path)
        assert os.path.exists(unix_path + ".lock")


SOCKET_FILES = [
    pytest.param(unix_stream, lambda: stream_handler(echo_line), id="stream"),
    pytest.param(unix_datagram, lambda: datagram_handler(lambda _d: None), id="datagram"),
]


@pytest.mark.parametrize(("make", "handler"), SOCKET_FILES)
def test_mode_owner_and_group_of_the_socket_file(
    make: Callable[..., Any], handler: Callable[[], Any], unix_path: str, composerv_no_leaks: None
) -> None:
    gid = os.getgid()
    for group in (gid, grp.getgrgid(gid).gr_name):
        transport = make(unix_path, mode=0o660, owner=os.getuid(), group=group)
        with serve(transport, sync(), handler()):
            info = os.stat(unix_path)
            assert stat.S_ISSOCK(info.st_mode)
            assert stat.S_IMODE(info.st_mode) == 0o660
            assert (info.st_uid, info.st_gid) == (os.getuid(), gid)


def test_an_unknown_owner_is_a_clear_error_and_leaves_no_path(
    unix_path: str, composerv_no_leaks: None
) -> None:
    with pytest.raises(ConfigurationError, match="owner 'no-such-user-x' is not a user"):
        serve(unix_stream(unix_path, owner="no-such-user-x"), sync(), stream_handler(echo_line))
    assert not os.path.exists(unix_path)
    with pytest.raises(ConfigurationError, match="group 'no-such-group-x' is not a group"):
        serve(unix_stream(unix_path, group="no-such-group-x"), sync(), stream_handler(echo_line))
    # The lock was released: the path can be served at once.
    serve(unix_stream(unix_path), sync(), stream_handler(echo_line)).server_close()


def test_socket_file_options_are_validated_at_construction(unix_path: str) -> None:
    with pytest.raises(ConfigurationError, match=r"mode must be a file mode .* not 0o10000"):
        unix_stream(unix_path, mode=0o10000)
    with pytest.raises(ConfigurationTypeError, match="mode must be an int such as 0o660"):
        unix_stream(unix_path, mode="660")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="owner must be a name or an id >= 0, not -1"):
        unix_datagram(unix_path, owner=-1)
    with pytest.raises(ConfigurationTypeError, match="group must be a name or a numeric id"):
        unix_stream(unix_path, group=1.5)  # type: ignore[arg-type]


def test_a_stale_path_is_still_replaced_under_the_lock(
    unix_path: str, composerv_no_leaks: None
) -> None:
    make_stale(unix_path)
    with serving(serve(unix_stream(unix_path), sync(), stream_handler(echo_line))):
        with connect(unix_path) as client:
            client.sendall(b"ok\n")
            assert recv_exactly(client, 3) == b"ok\n"
