"""An HTTP server written for Python 2 and 3: SocketServer's mixin on BaseHTTPServer's server."""

import sys
import threading

try:
    import SocketServer
    from BaseHTTPServer import BaseHTTPRequestHandler, HTTPServer
except ImportError:
    import socketserver as SocketServer
    from http.server import BaseHTTPRequestHandler, HTTPServer


class Server(SocketServer.ThreadingMixIn, HTTPServer):
    daemon_threads = True


class Hello(BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("hello from %s\n" % threading.current_thread().name).encode("ascii")
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


if __name__ == "__main__":
    server = Server(("127.0.0.1", 0), Hello)
    sys.stderr.write("listening on %s %d\n" % server.server_address)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    server.server_close()
