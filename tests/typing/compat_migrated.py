"""A socketserver program migrated by its import lines: mypy --strict passes on it.

tests/test_compat_typing.py checks it from outside the source tree, so mypy finds
compat and composerv.compat as an installed package (their py.typed markers).
"""

import compat.socketserver
import composerv.compat.socketserver as socketserver
from composerv.compat import SocketServer


class Echo(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        for line in self.rfile:
            self.wfile.write(line)


class Upper(compat.socketserver.StreamRequestHandler):
    timeout = 5.0

    def handle(self) -> None:
        self.wfile.write(self.rfile.readline().upper())


class Server(SocketServer.ThreadingMixIn, SocketServer.TCPServer):
    allow_reuse_address = True
    daemon_threads = True


def close(server: compat.socketserver.BaseServer) -> None:
    server.server_close()


def main() -> None:
    echo = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
    upper = compat.socketserver.ThreadingTCPServer(("127.0.0.1", 0), Upper)
    both: list[compat.socketserver.TCPServer] = [echo, upper, Server(("127.0.0.1", 0), Echo)]
    for server in both:
        host, port = server.server_address
        print(f"{type(server).__name__} on {host}:{port}")
        close(server)


if __name__ == "__main__":
    main()
