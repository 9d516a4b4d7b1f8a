"""A key-value store with per-connection authentication, on evented():

    KV_TOKEN=secret python examples/kv_auth.py 127.0.0.1:8000

The wire contract, one command per line, one reply line each:
- ``AUTH token`` answers ``OK`` (the token is ``secret``, or the ``KV_TOKEN``
  environment variable) or ``ERR bad token``; before it any command gets
  ``ERR auth required``;
- then ``SET k v`` -> ``OK``, ``GET k`` -> the value or ``NIL``, ``INCR k`` -> the new
  integer, ``DEL k`` -> ``1`` or ``0``.

The store is shared by all connections (one thread serves them all, so it needs no
lock); authentication is per connection: the session's state.
"""

from __future__ import annotations

import os
import sys

from _cli import run, url_for

from composerv import evented, lines, serve, session_handler, transport_from_url

store: dict[bytes, bytes] = {}
TOKEN = os.environ.get("KV_TOKEN", "secret").encode()


def start(peer: object) -> bool:
    """A new connection is not authenticated."""
    return False


def step(authenticated: bool, line: bytes) -> tuple[bool, bytes]:
    """One command: whether the connection is authenticated now, and the reply."""
    verb, _, rest = line.partition(b" ")
    if verb == b"AUTH":
        return (True, b"OK") if rest == TOKEN else (authenticated, b"ERR bad token")
    if not authenticated:
        return False, b"ERR auth required"
    return True, command(verb, rest)


def command(verb: bytes, rest: bytes) -> bytes:
    """The reply to an authenticated command."""
    key, _, value = rest.partition(b" ")
    if not key:
        return b"ERR missing key"
    if verb == b"SET" and value:
        store[key] = value
        return b"OK"
    if verb == b"GET":
        return store.get(key, b"NIL")
    if verb == b"DEL":
        return b"1" if store.pop(key, None) is not None else b"0"
    if verb == b"INCR":
        return increment(key)
    return b"ERR use AUTH, SET, GET, INCR or DEL"


def increment(key: bytes) -> bytes:
    """INCR: add one to the integer stored at `key` (0 if unset); the new value."""
    try:
        number = int(store.get(key, b"0")) + 1
    except ValueError:
        return b"ERR value is not an integer"
    store[key] = str(number).encode()
    return store[key]


def main() -> None:
    address = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:8000"
    transport = transport_from_url(url_for(address, "tcp", "unix"))
    server = serve(transport, evented(), session_handler(start, step, lines(max_size=4096)))
    run(server, f"try: printf 'AUTH secret\\nINCR n\\n' | nc -q1 {address.replace(':', ' ')}")


if __name__ == "__main__":
    main()
