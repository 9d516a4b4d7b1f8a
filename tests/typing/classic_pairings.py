"""request_handler(): the kind decides the handler type, so mypy rejects mismatches.

Lines that must fail end with ``# E: <label>``; tests/test_classic_handler.py holds
the expected messages.
"""

from compat import socketserver
from composerv import request_handler, serve, sync, tcp, threaded, udp, unix_datagram, unix_stream
from composerv.types import ClassicDatagramHandler, ClassicStreamHandler


class Echo(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        self.wfile.write(self.rfile.readline())


class Pong(socketserver.DatagramRequestHandler):
    def handle(self) -> None:
        self.wfile.write(self.rfile.read())


stream: ClassicStreamHandler = request_handler(Echo)
datagram: ClassicDatagramHandler = request_handler(Pong, kind="datagram")
serve(tcp(("127.0.0.1", 0)), threaded(), request_handler(Echo))
serve(unix_stream("/tmp/a.sock"), sync(), request_handler(Echo, kind="stream"))
serve(udp(("127.0.0.1", 0)), sync(), request_handler(Pong, kind="datagram"))
serve(unix_datagram("/tmp/b.sock"), sync(), request_handler(Pong, kind="datagram"))

serve(udp(("127.0.0.1", 0)), sync(), request_handler(Pong))  # E: stream-kind-on-udp
serve(tcp(("127.0.0.1", 0)), sync(), request_handler(Echo, kind="datagram"))  # E: datagram-kind-on-tcp
request_handler(Echo, kind="raw")  # E: unknown-kind
request_handler(42)  # E: not-a-class
