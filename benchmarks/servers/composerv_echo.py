"""A composerv echo server for the side-by-side benchmark (see benchmarks/README.md).

    python benchmarks/servers/composerv_echo.py CONCURRENCY HANDLER ADDR

CONCURRENCY: sync, threaded, pooled, pooled:N (N threads), evented, asyncio, uvloop;
prefixed with wN+ (e.g. w2+evented) to run it in N worker processes.
HANDLER: lines (message_handler with lines(); datagrams() on UDP), stream (a
stream_handler echoing bytes), readline (a stream_handler echoing line by line, as
the stdlib peers do), async (an async_stream_handler echoing bytes).
ADDR: 127.0.0.1:PORT, [::1]:PORT, unix:/path, or udp:HOST:PORT for UDP.
Prints READY once listening and dies on SIGTERM, as ../shared/bench expects.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

# Run from a checkout without installing: the repository root holds composerv/.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

import composerv
from composerv import Connection, Datagram

CONCURRENCY: dict[str, Callable[[], composerv.Concurrency]] = {
    "sync": composerv.sync,
    "threaded": composerv.threaded,
    "pooled": composerv.pooled,
    "evented": composerv.evented,
    "asyncio": composerv.asyncio_loop,
    "uvloop": lambda: composerv.asyncio_loop(uvloop=True),
}


def echo_bytes(conn: Connection) -> None:
    while data := conn.recv():
        conn.send_all(data)


def echo_lines(conn: Connection) -> None:
    while line := conn.readline():
        conn.send_all(line)


def echo_datagram(datagram: Datagram) -> None:
    datagram.reply(datagram.data)


async def echo_async(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()


def identity(message: bytes) -> bytes:
    return message


def transport(addr: str) -> composerv.Transport:  # type: ignore[type-arg]
    udp = addr.startswith("udp:")
    if udp:
        addr = addr[4:]
    if addr.startswith("unix:"):
        path = addr[5:]
        return composerv.unix_datagram(path) if udp else composerv.unix_stream(path)
    if addr.startswith("["):
        host, _, port = addr[1:].partition("]:")
    else:
        host, _, port = addr.rpartition(":")
    return composerv.udp((host, int(port))) if udp else composerv.tcp((host, int(port)))


def handler(name: str, kind: str) -> composerv.Handler:  # type: ignore[type-arg]
    if kind == "datagram":
        return {
            "lines": composerv.message_handler(identity, composerv.datagrams()),
            "stream": composerv.datagram_handler(echo_datagram),
        }[name]
    return {
        "lines": composerv.message_handler(identity),
        "stream": composerv.stream_handler(echo_bytes),
        "readline": composerv.stream_handler(echo_lines),
        "async": composerv.async_stream_handler(echo_async),
    }[name]


def main() -> None:
    concurrency, handler_name, addr = sys.argv[1:4]
    chosen = transport(addr)
    processes, _, concurrency = concurrency.rpartition("+")
    name, _, workers = concurrency.partition(":")
    # Any: the pairing is chosen on the command line, so serve() checks it at run time.
    made: Any = composerv.pooled(workers=int(workers)) if workers else CONCURRENCY[name]()
    if processes:
        made = composerv.workers(int(processes.removeprefix("w")), made)
    server = composerv.serve(chosen, made, handler(handler_name, chosen.kind))
    # SIGTERM ends the process at once, as the harness expects of every peer.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    print("READY", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
