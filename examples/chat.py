"""A chat room on evented(): python examples/chat.py 127.0.0.1:8000

The wire contract, one line per message:
- ``NICK name`` first, answered ``* welcome name``; any line before it gets
  ``ERR nick first``;
- every later line L goes to every other named client as ``name: L``, in order;
  the sender gets nothing back;
- a client that stops reading is disconnected once 1 MiB is queued for it, and
  the others do not slow down.

The protocol is two pure functions over a connection's state (its nick, or None
before it has one); the server does the rest.
"""

from __future__ import annotations

import sys

from _cli import run, url_for

from composerv import evented, limits, lines, serve, session_handler, transport_from_url
from composerv.sessions import Broadcast, Join, Output, Send

ROOM = "chat"
QUEUED_PER_CLIENT = 1024 * 1024


def start(peer: object) -> bytes | None:
    """A new client has no nick yet."""
    return None


def step(nick: bytes | None, line: bytes) -> tuple[bytes | None, Output]:
    """One line from a client: its new state and what to send."""
    if nick is None:
        if not line.startswith(b"NICK ") or not line[5:].strip():
            return None, b"ERR nick first"
        nick = line[5:].strip()
        return nick, [Join(ROOM), Send(b"* welcome " + nick)]
    return nick, Broadcast(nick + b": " + line, group=ROOM)


def main() -> None:
    address = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:8000"
    transport = transport_from_url(url_for(address, "tcp", "unix"))
    handler = session_handler(start, step, lines(max_size=4096), slow_consumer="close")
    server = serve(
        transport, evented(), handler, limits=limits(max_output_buffer=QUEUED_PER_CLIENT)
    )
    run(server, f"try: nc {address.replace(':', ' ')}, then NICK you")


if __name__ == "__main__":
    main()
