"""Echo over TCP (or unix stream sockets): python examples/echo_tcp.py 127.0.0.1:8000"""

from __future__ import annotations

import sys

from _cli import run, url_for

from composerv import Connection, serve, stream_handler, threaded, transport_from_url


def echo(conn: Connection) -> None:
    """Send every byte back until the client closes."""
    while data := conn.recv():
        conn.send_all(data)


def main() -> None:
    address = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:8000"
    transport = transport_from_url(url_for(address, "tcp", "unix"))
    server = serve(transport, threaded(), stream_handler(echo))
    run(server, f"try: printf 'hello\\n' | nc -q1 {address.replace(':', ' ')}")


if __name__ == "__main__":
    main()
