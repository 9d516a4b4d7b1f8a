# -*- coding: latin-1 -*-
# A Python 2 program: print statements, "except E, e", and a comment in latin-1: café.
import BaseHTTPServer, SocketServer
import sys, threading


class Server(SocketServer.ThreadingMixIn, BaseHTTPServer.HTTPServer):
    daemon_threads = True


class Hello(BaseHTTPServer.BaseHTTPRequestHandler):
    def do_GET(self):
        body = "hello from %s\n" % threading.current_thread().name
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode("ascii"))

    def log_message(self, format, *args):
        pass


if __name__ == "__main__":
    server = Server(("127.0.0.1", 0), Hello)
    print >>sys.stderr, "listening on %s %d" % server.server_address
    try:
        server.serve_forever()
    except KeyboardInterrupt, e:
        pass
    server.server_close()
