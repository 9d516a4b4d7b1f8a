"""An XML-RPC server written for Python 2 and 3, threaded with SocketServer's mixin."""

import sys
import threading

try:
    from SimpleXMLRPCServer import SimpleXMLRPCServer
    from SocketServer import ThreadingMixIn
except ImportError:
    from socketserver import ThreadingMixIn
    from xmlrpc.server import SimpleXMLRPCServer


class Server(ThreadingMixIn, SimpleXMLRPCServer):
    pass


def where():
    return threading.current_thread().name


if __name__ == "__main__":
    server = Server(("127.0.0.1", 0), logRequests=False)
    server.register_function(where)
    server.register_function(lambda a, b: a + b, "add")
    sys.stderr.write("listening on %s %d\n" % server.server_address)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    server.server_close()
