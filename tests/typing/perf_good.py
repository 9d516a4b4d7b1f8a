"""Fast-concurrency pairings that must type-check cleanly under mypy --strict."""

import asyncio
import socket

from composerv import (
    Datagram,
    Server,
    async_stream_handler,
    asyncio_loop,
    datagrams,
    evented,
    forking,
    length_prefixed,
    lines,
    message_handler,
    pooled,
    serve,
    sync,
    tcp,
    threaded,
    udp,
    unix_datagram,
    unix_stream,
)


def upper(message: bytes) -> bytes:
    return message.upper()


def maybe(message: bytes) -> bytes | None:
    return None if not message else message


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(await reader.readline())


a: Server[socket.socket] = serve(tcp(("127.0.0.1", 0)), evented(), message_handler(upper))
b: Server[socket.socket] = serve(
    unix_stream("/tmp/p.sock"), evented(), message_handler(maybe, length_prefixed())
)
c: Server[Datagram] = serve(udp(("127.0.0.1", 0)), evented(), message_handler(upper, datagrams()))
d: Server[socket.socket] = serve(tcp(("127.0.0.1", 0)), pooled(), message_handler(upper, lines()))
e: Server[Datagram] = serve(
    unix_datagram("/tmp/q.sock"), pooled(workers=4), message_handler(upper, datagrams())
)
f: Server[socket.socket] = serve(tcp(("127.0.0.1", 0)), sync(), message_handler(upper))
g: Server[Datagram] = serve(udp(("127.0.0.1", 0)), forking(), message_handler(upper, datagrams()))
h: Server[socket.socket] = serve(tcp(("127.0.0.1", 0)), asyncio_loop(), async_stream_handler(echo))
i: Server[socket.socket] = serve(tcp(("127.0.0.1", 0)), threaded(), async_stream_handler(echo))
