"""Line-protocol apps for the command-line tests.

`handler` echoes each line. `slow` answers ``started`` to a first line, then waits
for a second line before answering ``done``, so a test controls when a request in
flight ends. `pid` answers with the serving process's pid, to tell workers apart; `crash`
echoes, but ends its process with status 3 on ``crash``. `datagram` answers
each datagram in upper case.
"""

from __future__ import annotations

import os

from composerv import (
    Connection,
    Datagram,
    Server,
    datagram_handler,
    serve,
    stream_handler,
    tcp,
    threaded,
)


def _echo(conn: Connection) -> None:
    while line := conn.readline():
        conn.send_all(line)


def _slow(conn: Connection) -> None:
    if conn.readline():
        conn.send_all(b"started\n")
        if conn.readline():
            conn.send_all(b"done\n")


def _pid(conn: Connection) -> None:
    if conn.readline():
        conn.send_all(b"%d\n" % os.getpid())


def _crash(conn: Connection) -> None:
    while line := conn.readline():
        if line == b"crash\n":
            os._exit(3)
        conn.send_all(line)


def _upper(datagram: Datagram) -> None:
    datagram.reply(datagram.data.upper())


handler = stream_handler(_echo)
datagram = datagram_handler(_upper)
crash = stream_handler(_crash)
slow = stream_handler(_slow)
pid = stream_handler(_pid)
not_a_handler = 42


def make_handler() -> object:
    """A factory the CLI calls with no arguments."""
    return handler


def make_server() -> Server[object]:
    """A factory of a whole server on a free loopback port."""
    return serve(tcp(("127.0.0.1", 0)), threaded(), handler)  # type: ignore[return-value]
