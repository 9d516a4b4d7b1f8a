"""A threaded line server the way many are written: ``import socketserver as ss``.

Each connection starts with a header line read through ``self.rfile``; the body
is then read from ``self.rfile`` and answered through ``self.request`` directly,
mixing the buffered file and the socket as real handlers do.
"""

import socketserver as ss
import sys
import threading


class Handler(ss.StreamRequestHandler):
    timeout = 10  # seconds a client may stay silent

    def handle(self):
        size = int(self.rfile.readline().split(b" ")[1])  # b"SIZE 12\n"
        body = self.rfile.read(size)
        self.request.sendall(b"%d %s\n" % (len(body), body.upper()))
        for line in self.rfile:
            self.wfile.write(threading.current_thread().name.encode() + b" " + line)


class Server(ss.ThreadingMixIn, ss.TCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main():
    server = Server(("127.0.0.1", 0), Handler)
    print("listening on %s %d" % server.server_address, file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
