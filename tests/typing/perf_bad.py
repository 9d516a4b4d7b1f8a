"""Mismatches mypy must reject; each line's expected error is in tests/test_typing_perf.py."""

import asyncio

from composerv import (
    Connection,
    async_stream_handler,
    asyncio_loop,
    datagrams,
    evented,
    message_handler,
    pooled,
    serve,
    stream_handler,
    tcp,
    udp,
)


def echo(conn: Connection) -> None:
    conn.send_all(conn.recv())


def upper(message: bytes) -> bytes:
    return message.upper()


def to_text(message: bytes) -> str:
    return message.decode()


async def aecho(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(await reader.readline())


serve(tcp(("127.0.0.1", 0)), evented(), stream_handler(echo))  # E: blocking-on-evented
serve(tcp(("127.0.0.1", 0)), evented(), async_stream_handler(aecho))  # E: async-on-evented
serve(tcp(("127.0.0.1", 0)), asyncio_loop(), message_handler(upper))  # E: message-on-asyncio
serve(udp(("127.0.0.1", 0)), evented(), message_handler(upper))  # E: lines-on-udp
serve(tcp(("127.0.0.1", 0)), pooled(), message_handler(upper, datagrams()))  # E: datagrams-on-tcp
message_handler(to_text)  # E: reply-not-bytes
pooled(workers="8")  # E: workers-as-str
pooled(when_full="drop")  # E: when-full-literal
