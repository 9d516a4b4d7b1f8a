"""Echo over a unix stream socket: python examples/echo_unix.py unix:/tmp/echo.sock"""

from __future__ import annotations

import sys

from _cli import run
from echo_tcp import echo

from composerv import serve, stream_handler, threaded, unix_stream


def main() -> None:
    address = sys.argv[1] if len(sys.argv) > 1 else "unix:/tmp/composerv-echo.sock"
    path = address.removeprefix("unix:")
    server = serve(unix_stream(path), threaded(), stream_handler(echo))
    run(server, f"try: printf 'hello\\n' | nc -q1 -U {path}")


if __name__ == "__main__":
    main()
