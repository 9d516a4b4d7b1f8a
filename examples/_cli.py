"""What every example shares: ADDR parsing, READY on stdout, stopping on SIGTERM.

ADDR is ``127.0.0.1:PORT``, ``[::1]:PORT`` or ``unix:/path`` (the contract of
../shared/bench), turned into a composerv URL for `transport_from_url`.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from typing import Any


def url_for(address: str, stream_scheme: str, unix_scheme: str) -> str:
    """The composerv URL for a bench-style ADDR."""
    if address.startswith("unix:"):
        return f"{unix_scheme}://{address.removeprefix('unix:')}"
    return f"{stream_scheme}://{address}"


def run(server: Any, how_to_talk: str) -> None:
    """Print where `server` listens and READY, serve until SIGTERM/SIGINT, then close."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with server:
        loop = threading.Thread(target=server.serve_forever, name="serve-forever")
        loop.start()
        print(f"listening on {server.address!r}; {how_to_talk}", file=sys.stderr)
        print("READY", flush=True)
        stop.wait()
        server.shutdown()
        loop.join()
