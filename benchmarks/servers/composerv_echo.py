"""A composerv echo server for the side-by-side benchmark (see benchmarks/README.md).

    python benchmarks/servers/composerv_echo.py CONCURRENCY HANDLER ADDR [--root DIR]

CONCURRENCY: sync, threaded, pooled, pooled:N (N threads), evented, asyncio, uvloop;
prefixed with wN+ (e.g. w2+evented) to run it in N worker processes.

HANDLER: one per idiom users write, each echoing exactly what it gets:
  stream          stream_handler: conn.recv() / conn.send_all()                 bytes
  readline        stream_handler: conn.readline() / conn.send_all()             lines
  rfile           stream_handler: conn.rfile.readline() / conn.wfile.write()    lines
  rfile-iter      stream_handler: for line in conn.rfile: conn.wfile.write()    lines
  rfile-read      stream_handler: conn.rfile.read1(n) / conn.wfile.write()      bytes
  classic         request_handler(C), C a stdlib socketserver.StreamRequestHandler
                  doing ``for line in self.rfile: self.wfile.write(line)``      lines
  compat-classic  the same C derived from compat.socketserver's class           lines
  lines           message_handler(identity) with lines()                        lines
  lines-layered   the same, layered with allow_from, a per-message rate_limit
                  (never reached) and on_error: the layers that run per message lines
  session         session_handler: a step over a per-connection count            lines
  async           async_stream_handler: reader.read() / writer.write()          bytes
UDP takes stream (a datagram_handler replying with the datagram), lines
(message_handler with datagrams()), and classic / compat-classic (request_handler of
a BaseRequestHandler doing ``sock.sendto(data, self.client_address)``, as the stdlib
peer does).

ADDR: 127.0.0.1:PORT, [::1]:PORT, unix:/path, or udp:HOST:PORT for UDP.
--root DIR: run the composerv (and compat) of that checkout, e.g. a frozen copy of
main, so that "before" and "after" run side by side. Only composerv's public names
are used, and its types only as annotations, so renames inside it do not matter.
Prints READY once listening and dies on SIGTERM, as ../shared/bench expects.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from _shared import add_root_option, parse_address, ready, use_checkout  # beside this script

use_checkout(sys.argv[1:])

import composerv  # noqa: E402  # from the checkout that use_checkout put first on sys.path

# Bulk reads: at most 64 KiB, the size under which glibc reuses receive buffers
# (see the harness README, finding 3).
READ_SIZE = 65536

# Any: the names of the concurrency, transport and handler types may move (e.g. to
# composerv.abc); the factories stay.
CONCURRENCY: dict[str, Callable[[], Any]] = {
    "sync": composerv.sync,
    "threaded": composerv.threaded,
    "pooled": composerv.pooled,
    "evented": composerv.evented,
    "asyncio": composerv.asyncio_loop,
    "uvloop": lambda: composerv.asyncio_loop(uvloop=True),
}


def echo_bytes(conn: composerv.Connection) -> None:
    while data := conn.recv():
        conn.send_all(data)


def echo_lines(conn: composerv.Connection) -> None:
    while line := conn.readline():
        conn.send_all(line)


def echo_rfile_lines(conn: composerv.Connection) -> None:
    rfile, wfile = conn.rfile, conn.wfile
    while line := rfile.readline():
        wfile.write(line)


def echo_rfile_iteration(conn: composerv.Connection) -> None:
    wfile = conn.wfile
    for line in conn.rfile:
        wfile.write(line)


def echo_rfile_read(conn: composerv.Connection) -> None:
    # read1, not read: read(n) waits for n bytes, and a ping-pong peer sends 64.
    rfile, wfile = conn.rfile, conn.wfile
    # rfile is typed BinaryIO, which lacks read1; it is a BufferedReader at run time.
    while data := rfile.read1(READ_SIZE):  # type: ignore[attr-defined]
        wfile.write(data)


def echo_datagram(datagram: composerv.Datagram) -> None:
    datagram.reply(datagram.data)


async def echo_async(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(READ_SIZE):
        writer.write(data)
        await writer.drain()


def identity(message: bytes) -> bytes:
    return message


def layered_identity() -> Any:
    # Imported when chosen: a --root checkout from before layers still runs the rest.
    from composerv.layers import allow_from, on_error, rate_limit

    return composerv.layered(
        composerv.message_handler(identity),
        allow_from("127.0.0.0/8", "::1/128"),
        rate_limit(1e9, messages=True),
        on_error(b"ERR\n"),
    )


def count_start(_peer: object) -> int:
    return 0


def count_step(count: int, message: bytes) -> tuple[int, bytes]:
    return count + 1, message


def line_echo_class(module: str) -> Any:
    """A `module`.StreamRequestHandler subclass that echoes line by line, as ports of
    socketserver programs do; the module is imported only when asked for."""

    class LineEcho(importlib.import_module(module).StreamRequestHandler):  # type: ignore[misc]  # a base known at run time
        def handle(self) -> None:
            for line in self.rfile:
                self.wfile.write(line)

    return LineEcho


def datagram_echo_class(module: str) -> Any:
    """A `module`.BaseRequestHandler subclass that replies with each datagram, as the
    harness's stdlib UDP peers do."""

    class DatagramEcho(importlib.import_module(module).BaseRequestHandler):  # type: ignore[misc]  # a base known at run time
        def handle(self) -> None:
            data, sock = self.request
            sock.sendto(data, self.client_address)

    return DatagramEcho


# handler name -> a function making it; made only when chosen, so that a server
# imports no socketserver module it does not use.
STREAM_HANDLERS: dict[str, Callable[[], Any]] = {
    "stream": lambda: composerv.stream_handler(echo_bytes),
    "readline": lambda: composerv.stream_handler(echo_lines),
    "rfile": lambda: composerv.stream_handler(echo_rfile_lines),
    "rfile-iter": lambda: composerv.stream_handler(echo_rfile_iteration),
    "rfile-read": lambda: composerv.stream_handler(echo_rfile_read),
    "classic": lambda: composerv.request_handler(line_echo_class("socketserver")),
    "compat-classic": lambda: composerv.request_handler(line_echo_class("compat.socketserver")),
    "lines": lambda: composerv.message_handler(identity),
    "lines-layered": layered_identity,
    "session": lambda: composerv.session_handler(count_start, count_step),
    "async": lambda: composerv.async_stream_handler(echo_async),
}
DATAGRAM_HANDLERS: dict[str, Callable[[], Any]] = {
    "stream": lambda: composerv.datagram_handler(echo_datagram),
    "lines": lambda: composerv.message_handler(identity, composerv.datagrams()),
    "classic": lambda: composerv.request_handler(
        datagram_echo_class("socketserver"), kind="datagram"
    ),
    "compat-classic": lambda: composerv.request_handler(
        datagram_echo_class("compat.socketserver"), kind="datagram"
    ),
}


def transport(addr: str) -> Any:
    udp = addr.startswith("udp:")
    address = parse_address(addr.removeprefix("udp:"))
    if isinstance(address, str):
        return composerv.unix_datagram(address) if udp else composerv.unix_stream(address)
    return composerv.udp(address) if udp else composerv.tcp(address)


def concurrency(spec: str) -> Any:
    processes, _, inner = spec.rpartition("+")
    name, _, threads = inner.partition(":")
    made = composerv.pooled(workers=int(threads)) if threads else CONCURRENCY[name]()
    return composerv.workers(int(processes.removeprefix("w")), made) if processes else made


def arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("concurrency", help="e.g. threaded, pooled:128, w2+evented")
    parser.add_argument("handler", choices=list(STREAM_HANDLERS))
    parser.add_argument("addr", help="127.0.0.1:PORT, [::1]:PORT, unix:/path or udp:HOST:PORT")
    add_root_option(parser)
    args = parser.parse_args(argv)
    if args.addr.startswith("udp:") and args.handler not in DATAGRAM_HANDLERS:
        parser.error(
            f"handler {args.handler!r} has no UDP form; UDP takes {', '.join(DATAGRAM_HANDLERS)}"
        )
    return args


def main() -> None:
    args = arguments(sys.argv[1:])
    handlers = DATAGRAM_HANDLERS if args.addr.startswith("udp:") else STREAM_HANDLERS
    # serve() checks the pairing at run time: it is chosen on the command line.
    server = composerv.serve(
        transport(args.addr), concurrency(args.concurrency), handlers[args.handler]()
    )
    # SIGTERM ends the process at once, as the harness expects of every peer.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    ready()
    server.serve_forever()


if __name__ == "__main__":
    main()
