"""The server: the loop, the request lifecycle, and `serve()`."""

from ._lifecycle import RequestLifecycle, ServeLoop
from ._server import ACCEPT_CAPACITY_ERRNOS, Server, serve

__all__ = ["ACCEPT_CAPACITY_ERRNOS", "RequestLifecycle", "ServeLoop", "Server", "serve"]
