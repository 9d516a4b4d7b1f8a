"""Mismatches mypy must reject; each line's expected error is in tests/test_typing.py."""

from composerv import (
    Connection,
    Datagram,
    datagram_handler,
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
    conn.send_all(conn.recv())


def answer(datagram: Datagram) -> None:
    datagram.reply(datagram.data)


serve(udp(("127.0.0.1", 0)), sync(), stream_handler(echo))  # E: stream-on-udp
serve(unix_datagram("/tmp/x.sock"), threaded(), stream_handler(echo))  # E: stream-on-unix-dgram
serve(tcp(("127.0.0.1", 0)), sync(), datagram_handler(answer))  # E: datagram-on-tcp
serve(unix_stream("/tmp/y.sock"), sync(), datagram_handler(answer))  # E: datagram-on-unix-stream
stream_handler(answer)  # E: datagram-function-as-stream
datagram_handler(echo)  # E: stream-function-as-datagram
tcp(("127.0.0.1", "80"))  # E: port-as-str
tcp(("127.0.0.1", 80), backlog="5")  # E: backlog-as-str
threaded(daemon=1.5)  # E: daemon-as-float
