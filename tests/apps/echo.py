"""Line-protocol apps for the command-line tests.

`handler` echoes each line. `slow` answers ``started`` to a first line, works for
SLOW_REQUEST_SECONDS, then answers ``done``: a request in flight that is not idle.
`pid` answers with the serving process's pid, to tell workers apart; `peer`
with the peer it sees (behind a proxy, the client) and the line; `crash`
echoes, but ends its process with status 3 on ``crash``. `datagram` answers
each datagram in upper case; `shout`, a message handler, each line.
"""

from __future__ import annotations

import os
import time

from composerv import (
    Connection,
    Datagram,
    Server,
    datagram_handler,
    message_handler,
    serve,
    stream_handler,
    tcp,
    threaded,
)

SLOW_REQUEST_SECONDS = 1.5


def _echo(conn: Connection) -> None:
    while line := conn.readline():
        conn.send_all(line)


def _slow(conn: Connection) -> None:
    if conn.readline():
        conn.send_all(b"started\n")
        # Busy mid-request (not waiting for the client) long enough for a test to
        # send SIGTERM and check that new clients are refused.
        time.sleep(SLOW_REQUEST_SECONDS)
        conn.send_all(b"done\n")


def _pid(conn: Connection) -> None:
    if conn.readline():
        conn.send_all(b"%d\n" % os.getpid())


def _peer(conn: Connection) -> None:
    while line := conn.readline():
        host, port = conn.peer[:2]  # type: ignore[misc]  # an inet peer
        conn.send_all(f"{host} {port} ".encode() + line)


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
peer = stream_handler(_peer)
shout = message_handler(bytes.upper)
not_a_handler = 42


def make_handler() -> object:
    """A factory the CLI calls with no arguments."""
    return handler


def make_server() -> Server[object]:
    """A factory of a whole server on a free loopback port."""
    return serve(tcp(("127.0.0.1", 0)), threaded(), handler)  # type: ignore[return-value]
