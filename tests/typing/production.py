"""Production values in serve(): good lines type-check, ``# E:`` lines must fail."""

import socket
import ssl

from composerv import (
    Connection,
    Datagram,
    Server,
    datagram_handler,
    datagrams,
    evented,
    inherited,
    message_handler,
    proxy_protocol,
    serve,
    stream_handler,
    tcp,
    threaded,
    tls,
    udp,
    unix_stream,
    workers,
)


def echo(conn: Connection) -> None:
    conn.send_all(conn.recv())


def answer(datagram: Datagram) -> None:
    datagram.reply(datagram.data)


context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
many: Server[socket.socket] = serve(tcp(("127.0.0.1", 0)), workers(2, threaded()), stream_handler(echo))
default_workers: Server[socket.socket] = serve(tcp(("127.0.0.1", 0)), workers(), stream_handler(echo))
many_loops: Server[socket.socket] = serve(tcp(("127.0.0.1", 0)), workers(2, evented()), message_handler(bytes.upper))
many_dgram_loops: Server[Datagram] = serve(udp(("127.0.0.1", 0)), workers(2, evented()), message_handler(bytes.upper, datagrams()))
secure: Server[socket.socket] = serve(tls(unix_stream("/tmp/x.sock"), context), threaded(), stream_handler(echo))
proxied = proxy_protocol(tcp(("127.0.0.1", 0)), trusted=["10.0.0.0/8"])
behind: Server[socket.socket] = serve(proxied, workers(2, evented()), message_handler(bytes.upper))
behind_tls: Server[socket.socket] = serve(tls(proxied, context), threaded(), stream_handler(echo))
passed: Server[socket.socket] = serve(inherited(3, "stream"), threaded(), stream_handler(echo))
passed_dgram: Server[Datagram] = serve(inherited(4, "datagram"), threaded(), datagram_handler(answer))

serve(inherited(4, "datagram"), threaded(), stream_handler(echo))  # E: stream-on-inherited-dgram
serve(tls(tcp(("127.0.0.1", 0)), context), threaded(), datagram_handler(answer))  # E: datagram-on-tls
tls(udp(("127.0.0.1", 0)), context)  # E: tls-over-udp
workers(2, "threaded")  # E: workers-of-str
proxy_protocol(udp(("127.0.0.1", 0)), trusted=["10.0.0.0/8"])  # E: proxy-over-udp
serve(proxied, threaded(), datagram_handler(answer))  # E: datagram-on-proxy
serve(tcp(("127.0.0.1", 0)), workers(2, evented()), stream_handler(echo))  # E: stream-on-evented-workers
