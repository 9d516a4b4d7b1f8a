"""Pairings that must type-check cleanly under mypy --strict."""

import socket

from composerv import (
    Connection,
    Datagram,
    Server,
    datagram_handler,
    forking,
    serve,
    stream_handler,
    sync,
    tcp,
    threaded,
    udp,
    unix_datagram,
    unix_stream,
)


def echo(conn: Connection) -> None:
    while data := conn.recv():
        conn.send_all(data)


def answer(datagram: Datagram) -> None:
    datagram.reply(datagram.data)


stream_server: Server[socket.socket] = serve(tcp(("127.0.0.1", 0)), threaded(), stream_handler(echo))
unix_server: Server[socket.socket] = serve(unix_stream("/tmp/x.sock"), forking(), stream_handler(echo))
udp_server: Server[Datagram] = serve(udp(("::1", 0)), sync(), datagram_handler(answer))
unix_dgram_server: Server[Datagram] = serve(
    unix_datagram("/tmp/y.sock"), threaded(daemon=True), datagram_handler(answer)
)
