"""`tls(transport, ssl_context)`: TLS over a stream transport.

The accept loop only accepts: the handshake runs in `prepare_request`, which the
server calls where the request is served (a thread, a child process), so a slow
or hostile client holds up no one else. A failed handshake is logged in one line
with the peer and closes that connection only. After it, the TLS socket reads
and writes through the request's context like any connection, so the idle, read
and write timeouts hold over TLS too (with Python-level timeouts: a blocking
``SSLSocket`` retries on a kernel timeout's EAGAIN instead of failing).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from typing import TYPE_CHECKING, Any, ClassVar, Generic

import attrs

from .._addresses import Address, peer_repr
from .._connection import route_tls_socket
from .._context import RequestContext
from .._errors import ConfigurationError, ConfigurationTypeError
from .._log import logger
from .._validate import optional_positive_number
from ._base import A, StreamTransport, WrappingStreamTransport, close_connection

if TYPE_CHECKING:
    pass

__all__ = ["TLS", "log_failed_handshake", "tls"]

# A handshake takes a round trip or two; a client that has not finished in this
# long is stalled or hostile, and holds a worker until then.
DEFAULT_HANDSHAKE_TIMEOUT = 10.0


def _stream_transport(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, StreamTransport):
        raise ConfigurationTypeError(
            f"{attribute.name} must be a stream transport such as tcp(...) or "
            f"unix_stream(...), not {value!r}: TLS runs over streams only"
        )


def _server_context(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, ssl.SSLContext):
        raise ConfigurationTypeError(f"{attribute.name} must be an ssl.SSLContext, not {value!r}")
    if value.protocol == ssl.PROTOCOL_TLS_CLIENT:
        raise ConfigurationError(
            f"{attribute.name} is a client context (PROTOCOL_TLS_CLIENT); make a server one "
            "with ssl.create_default_context(ssl.Purpose.CLIENT_AUTH) or "
            "ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)"
        )


@attrs.frozen
class TLS(WrappingStreamTransport[A], Generic[A]):
    """TLS over a stream transport; build it with `tls`."""

    prepares_requests: ClassVar[bool] = True

    transport: StreamTransport[A] = attrs.field(validator=_stream_transport)
    """The stream transport underneath (`tcp`, `unix_stream`, `inherited`)."""
    context: ssl.SSLContext = attrs.field(validator=_server_context, repr=False)
    """The server-side context: certificate chain, key, protocols, ciphers."""
    handshake_timeout: float | None = attrs.field(
        default=DEFAULT_HANDSHAKE_TIMEOUT, validator=optional_positive_number
    )
    """Seconds a client gets to complete the handshake; None waits forever."""

    @property
    def tls(self) -> TLS[A]:
        """This transport itself."""
        return self

    def prepare_request(
        self, request: socket.socket, context: RequestContext
    ) -> socket.socket | None:
        """The transport underneath prepares first (the PROXY header comes before the
        handshake); then the server side of the handshake, within
        `handshake_timeout`. None (logged) if it fails."""
        prepared = self.transport.prepare_request(request, context)
        if prepared is None:
            return None
        # wrap_socket takes over the descriptor: `prepared` is detached from here on.
        tls_socket = self.context.wrap_socket(
            prepared, server_side=True, do_handshake_on_connect=False
        )
        context.watch(tls_socket)  # a drain that cuts now must reach the handshake
        try:
            tls_socket.settimeout(self.handshake_timeout)
            tls_socket.do_handshake()
        except OSError as exc:  # ssl.SSLError, a timeout, a reset: all OSErrors
            log_failed_handshake(context.peer, exc)
            close_connection(tls_socket)
            return None
        tls_socket.settimeout(None)
        return route_tls_socket(tls_socket, context)

    def close_request(self, request: socket.socket, *, at_eof: bool = False) -> None:
        if isinstance(request, ssl.SSLSocket):
            # Send close_notify, so the client can tell the end of the stream from a
            # cut (OpenSSL 3 clients report an "unexpected eof" without it), but do
            # not wait for the client's own: non-blocking, a reply is not needed.
            with contextlib.suppress(OSError):
                request.setblocking(False)
                request.unwrap()
        # The guard's end of stream is the raw socket's, not the TLS stream's.
        self.transport.close_request(request)


def log_failed_handshake(peer: Address, error: OSError) -> None:
    """Log a failed handshake as routine for a server: one line naming the peer, no
    traceback."""
    logger.warning("TLS handshake with %s failed: %s", peer_repr(peer), error)


def tls(
    transport: StreamTransport[A],
    ssl_context: ssl.SSLContext,
    *,
    handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT,
) -> TLS[A]:
    """TLS over a stream transport, e.g. ``tls(tcp(("127.0.0.1", 8443)), ctx)``.

    `ssl_context` is a server context with a certificate loaded::

        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain("cert.pem", "key.pem")

    Handlers see the decrypted stream: a `Connection` over an ``ssl.SSLSocket``.
    """
    return TLS(transport, ssl_context, handshake_timeout=handshake_timeout)
