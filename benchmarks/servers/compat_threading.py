"""compat.socketserver.ThreadingTCPServer with the handler of the harness's ThreadingTCPServer.

    python benchmarks/servers/compat_threading.py ADDR [--root DIR]

A stdlib program ported by its import alone: the same server and handler classes
as ../shared/bench/servers/stdlib_tcp_threading.py, and the same settings (backlog
BENCH_BACKLOG, default 128; address reuse), taken from compat.socketserver.
ADDR: 127.0.0.1:PORT, [::1]:PORT or unix:/path (ThreadingUnixStreamServer).
--root DIR runs the compat of that checkout. Prints READY once listening; SIGTERM
ends it, as the harness expects.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys

from _shared import add_root_option, parse_address, ready, use_checkout  # beside this script

use_checkout(sys.argv[1:])

from compat import socketserver  # noqa: E402  # from the checkout that use_checkout put first on sys.path

# The harness's backlog for every peer (socketserver's default of 5 stalls pp128).
BACKLOG = int(os.environ.get("BENCH_BACKLOG", "128"))


class Echo(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        rfile, wfile = self.rfile, self.wfile
        while True:
            line = rfile.readline()
            if not line:
                break
            wfile.write(line)


class TCP(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    request_queue_size = BACKLOG


class TCP6(TCP):
    address_family = socket.AF_INET6


class Unix(socketserver.ThreadingUnixStreamServer):
    request_queue_size = BACKLOG


def server(addr: str) -> socketserver.BaseServer:
    address = parse_address(addr)
    if isinstance(address, str):
        return Unix(address, Echo)
    return (TCP6 if ":" in address[0] else TCP)(address, Echo)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("addr", help="127.0.0.1:PORT, [::1]:PORT or unix:/path")
    add_root_option(parser)
    listening = server(parser.parse_args().addr)
    ready()
    listening.serve_forever()


if __name__ == "__main__":
    main()
