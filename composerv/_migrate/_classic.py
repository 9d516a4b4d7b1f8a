"""What ``composerv migrate --report`` knows: the classic classes and their core equivalents."""

from __future__ import annotations

import inspect
from typing import Literal

import attrs

import composerv

__all__ = [
    "CLASSES",
    "DATAGRAM_TRANSPORTS",
    "MODULES",
    "OPTIONS",
    "ClassicClass",
    "Option",
    "advice_for_hook",
    "advice_for_setting",
]

Role = Literal["server", "mixin", "handler"]

DATAGRAM_TRANSPORTS = ("udp", "unix_datagram")
"""The core transports that deliver datagrams."""

MODULES = {
    "socketserver": "socketserver",
    "SocketServer": "socketserver",
    "compat.socketserver": "socketserver",
    "compat.SocketServer": "socketserver",
    "http.server": "http.server",
    "BaseHTTPServer": "http.server",
    "SimpleHTTPServer": "http.server",
    "CGIHTTPServer": "http.server",
    "xmlrpc.server": "xmlrpc.server",
    "SimpleXMLRPCServer": "xmlrpc.server",
    "DocXMLRPCServer": "xmlrpc.server",
}
"""Module names as programs import them (Python 2's too) -> the Python 3 module."""


@attrs.frozen
class ClassicClass:
    """A class of socketserver, or of a stdlib module built on it, as the report sees it."""

    role: Role
    transport: str | None = None
    """The core transport factory a server's address goes to (``tcp``, ``udp``...)."""
    concurrency: str | None = None
    """The core concurrency factory that schedules like it (``sync``, ``threaded``...)."""
    handler_kind: Literal["stream", "datagram"] | None = None
    """What a handler class serves; None for BaseRequestHandler, which serves either."""
    on_stdlib: bool = False
    """Defined by http.server or xmlrpc.server, so derived from the stdlib socketserver."""


def _socketserver_classes() -> dict[str, ClassicClass]:
    transports = {
        "TCP": "tcp",
        "UDP": "udp",
        "UnixStream": "unix_stream",
        "UnixDatagram": "unix_datagram",
    }
    schedulers = {"": "sync", "Threading": "threaded", "Forking": "forking"}
    classes = {
        f"{prefix}{kind}Server": ClassicClass("server", transport, concurrency)
        for prefix, concurrency in schedulers.items()
        for kind, transport in transports.items()
    }
    return classes | {
        "BaseServer": ClassicClass("server", concurrency="sync"),
        "ThreadingMixIn": ClassicClass("mixin", concurrency="threaded"),
        "ForkingMixIn": ClassicClass("mixin", concurrency="forking"),
        "BaseRequestHandler": ClassicClass("handler"),
        "StreamRequestHandler": ClassicClass("handler", handler_kind="stream"),
        "DatagramRequestHandler": ClassicClass("handler", handler_kind="datagram"),
    }


_HTTP_SERVER = ClassicClass("server", "tcp", "sync", on_stdlib=True)
_HTTP_HANDLER = ClassicClass("handler", handler_kind="stream", on_stdlib=True)

CLASSES: dict[tuple[str, str], ClassicClass] = {
    **{("socketserver", name): value for name, value in _socketserver_classes().items()},
    ("http.server", "HTTPServer"): _HTTP_SERVER,
    ("http.server", "ThreadingHTTPServer"): attrs.evolve(_HTTP_SERVER, concurrency="threaded"),
    ("http.server", "BaseHTTPRequestHandler"): _HTTP_HANDLER,
    ("http.server", "SimpleHTTPRequestHandler"): _HTTP_HANDLER,
    ("http.server", "CGIHTTPRequestHandler"): _HTTP_HANDLER,
    ("xmlrpc.server", "SimpleXMLRPCServer"): _HTTP_SERVER,
    ("xmlrpc.server", "MultiPathXMLRPCServer"): _HTTP_SERVER,
    ("xmlrpc.server", "DocXMLRPCServer"): _HTTP_SERVER,
    ("xmlrpc.server", "SimpleXMLRPCRequestHandler"): _HTTP_HANDLER,
    ("xmlrpc.server", "DocXMLRPCRequestHandler"): _HTTP_HANDLER,
}
"""(module, class name) -> what the class is."""


@attrs.frozen
class Option:
    """A classic attribute whose value becomes a keyword of a core factory."""

    role: Literal["server", "handler"]
    setting: str
    factories: tuple[str, ...]
    """The core factories that take it; the first of them that the server uses gets it."""
    keyword: str

    def default(self, factory: str) -> object:
        """The factory's default for the keyword: passing it would change nothing."""
        return inspect.signature(getattr(composerv, factory)).parameters[self.keyword].default


OPTIONS = (
    Option("server", "daemon_threads", ("threaded",), "daemon"),
    Option("server", "block_on_close", ("threaded", "forking"), "block_on_close"),
    Option("server", "max_children", ("forking",), "max_children"),
    Option("server", "request_queue_size", ("tcp", "unix_stream"), "backlog"),
    Option("server", "allow_reuse_address", ("tcp", "udp"), "reuse_address"),
    Option("server", "allow_reuse_port", ("tcp", "udp"), "reuse_port"),
    Option("server", "max_packet_size", ("udp", "unix_datagram"), "max_datagram_size"),
    Option("handler", "disable_nagle_algorithm", ("tcp",), "nodelay"),
    Option("handler", "timeout", ("limits",), "idle_timeout"),
)
"""The attributes that the suggested ``serve(...)`` carries over."""

_SETTING_ADVICE = {
    ("server", "timeout"): "handle_request() waits this long, then calls handle_timeout(); "
    "the core's Server.handle_request(timeout) takes it as an argument and has no hook",
    ("server", "address_family"): "the core picks the family from the address (a host such "
    'as "::1" gives IPv6); tcp(..., dual_stack=True) serves IPv4 and IPv6 on one socket',
    ("server", "socket_type"): "the transport decides: tcp()/unix_stream() stream, "
    "udp()/unix_datagram() datagram",
    ("handler", "rbufsize"): "conn.rfile is buffered and conn.wfile is not, as with the "
    "defaults; other sizes have no core equivalent",
    ("handler", "wbufsize"): "conn.wfile is unbuffered, as with the default; a buffered "
    "writer has no core equivalent: build the reply, then send_all it",
}


def advice_for_setting(role: Literal["server", "handler"], setting: str) -> str | None:
    """What a classic attribute becomes on the core, when no `Option` carries it over."""
    return _SETTING_ADVICE.get((role, setting))


_STAY = "no hook on the core: stay on compat for it"
_HOOK_ADVICE = {
    "server": {
        "server_bind": "binding is the transport's: tcp(..., reuse_address=, reuse_port=, "
        "dual_stack=); other socket options need compat",
        "server_activate": "listening is the transport's: tcp(..., backlog=N)",
        "get_request": _STAY,
        "verify_request": "no hook on the core: refuse in the handler (return at once), "
        "or stay on compat",
        "process_request": "scheduling is the concurrency's (sync, threaded, forking, pooled, "
        "evented); another policy needs compat",
        "process_request_thread": _STAY,
        "finish_request": "the core calls the handler itself: wrap the handler function instead",
        "shutdown_request": "the core closes each connection after its handler returns",
        "close_request": "the core closes each connection after its handler returns",
        "handle_error": "the core logs handler errors, with the peer, on the 'composerv' "
        "logger: configure logging instead",
        "handle_timeout": "no hook: act when Server.handle_request(timeout) returns",
        "service_actions": "no hook: run periodic work in a thread of its own",
        "server_close": "clean up after the `with server:` block",
        "collect_children": "forking() reaps its own children",
        "serve_forever": _STAY,
        "handle_request": _STAY,
        "shutdown": _STAY,
        "__init__": "state a server keeps for its handlers becomes values the handler "
        "function closes over",
    },
    "handler": {
        "setup": "the start of the handler function",
        "finish": "a `finally:` at the end of the handler function",
        "__init__": "request_handler() calls the class as socketserver does, so it still runs",
    },
}


def advice_for_hook(role: Role, hook: str) -> str | None:
    """What overriding `hook` means on the core; None if it is not a classic hook."""
    return _HOOK_ADVICE["handler" if role == "handler" else "server"].get(hook)
