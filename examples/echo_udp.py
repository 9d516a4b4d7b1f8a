"""Echo over UDP (or unix datagram sockets): python examples/echo_udp.py 127.0.0.1:8001"""

from __future__ import annotations

import sys

from _cli import run, url_for

from composerv import Datagram, datagram_handler, serve, sync, transport_from_url


def echo(datagram: Datagram) -> None:
    """Send each datagram back to its sender."""
    datagram.reply(datagram.data)


def main() -> None:
    address = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:8001"
    transport = transport_from_url(url_for(address, "udp", "unix-dgram"))
    server = serve(transport, sync(), datagram_handler(echo))
    run(server, f"try: printf 'hello' | nc -u -q1 {address.replace(':', ' ')}")


if __name__ == "__main__":
    main()
