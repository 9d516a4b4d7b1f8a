"""A line-protocol key-value store on evented(): python examples/kv_evented.py 127.0.0.1:8000

Commands, one per line: ``SET key value``, ``GET key``, ``DEL key``. Replies are
one line each: ``OK``, the value, ``NIL`` or ``ERR <why>``. One thread serves
every client, so the dict needs no lock; the handler is a pure function of the
message and that dict.
"""

from __future__ import annotations

import sys

from _cli import run, url_for

from composerv import evented, lines, message_handler, serve, transport_from_url

store: dict[bytes, bytes] = {}


def command(message: bytes) -> bytes:
    """Run one command line and return its reply line."""
    verb, _, rest = message.partition(b" ")
    key, _, value = rest.partition(b" ")
    if not key:
        return b"ERR missing key"
    if verb == b"SET" and value:
        store[key] = value
        return b"OK"
    if verb == b"GET":
        return store.get(key, b"NIL")
    if verb == b"DEL":
        return b"OK" if store.pop(key, None) is not None else b"NIL"
    return b"ERR use SET key value, GET key or DEL key"


def main() -> None:
    address = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:8000"
    transport = transport_from_url(url_for(address, "tcp", "unix"))
    handler = message_handler(command, lines(max_size=4096))
    server = serve(transport, evented(), handler)
    run(server, f"try: printf 'SET a 1\\nGET a\\n' | nc -q1 {address.replace(':', ' ')}")


if __name__ == "__main__":
    main()
