"""`metrics_handler(servers)`: servers' `ServerStats` over HTTP, in the Prometheus text format.

The text is prometheus-client's (an optional dependency: ``pip install
'composerv[metrics]'``), from a collector that reads each server's snapshot when
scraped: nothing is kept between scrapes, and under `workers` the parent's
snapshot already sums its workers, so no multiprocess directory is needed. Each
figure is one metric family with a ``listener`` label, the server's URL.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Sequence
from typing import Any

from ._connection import Connection
from ._errors import ConfigurationError
from ._handlers import StreamHandler, stream_handler
from ._server import Server
from ._stats import ServerStats
from ._url import url_of

__all__ = ["METRICS", "metrics_handler", "metrics_text"]

METRICS: tuple[tuple[str, str, str, str], ...] = (
    ("connections", "counter", "connections", "Connections accepted (or datagrams received)."),
    ("open", "gauge", "connections_open", "Connections open now."),
    ("requests", "counter", "requests", "Requests served to their end."),
    ("errors", "counter", "errors", "Requests that ended with an error."),
    ("timeouts", "counter", "timeouts", "Requests that ended on an idle, read or write timeout."),
    ("refused", "counter", "refused", "Requests closed before the handler (capacity, a layer, "
     "a missing or bad PROXY header)."),
    ("bytes_in", "counter", "received_bytes", "Bytes received from clients."),
    ("bytes_out", "counter", "sent_bytes", "Bytes sent to clients."),
    ("drained", "counter", "drained", "Requests a drain let finish."),
    ("closed_idle", "counter", "closed_idle", "Idle connections a drain closed."),
    ("cut", "counter", "cut", "Requests a drain cut at its deadline."),
)  # fmt: skip
"""Each `ServerStats` field, its metric type, its name after ``composerv_`` (counters
get prometheus-client's ``_total``), and its help text."""

# A scrape is one short request: a longer head is not a scraper's.
_MAX_REQUEST_LINES = 100
_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _prometheus() -> Any:
    try:
        return importlib.import_module("prometheus_client")
    except ImportError:
        raise ConfigurationError(
            "metrics need the prometheus-client package, which is not installed: "
            "pip install 'composerv[metrics]'"
        ) from None


def metrics_text(stats: Sequence[tuple[str, ServerStats]]) -> bytes:
    """The Prometheus text exposition of `stats`, ``(listener, snapshot)`` pairs."""
    client = _prometheus()
    core = importlib.import_module("prometheus_client.core")
    families = {"counter": core.CounterMetricFamily, "gauge": core.GaugeMetricFamily}

    class Collector:
        def collect(self) -> Iterator[Any]:
            for field, kind, name, text in METRICS:
                family = families[kind](f"composerv_{name}", text, labels=["listener"])
                for listener, snapshot in stats:
                    family.add_metric([listener], getattr(snapshot, field))
                yield family

    registry = client.CollectorRegistry(auto_describe=False)
    registry.register(Collector())
    text: bytes = client.generate_latest(registry)
    return text


def metrics_handler(*servers: Server[Any]) -> StreamHandler:
    """A handler that answers ``GET /metrics`` with the `Server.stats` of `servers` in
    the Prometheus text format (``composerv_connections_total`` and the rest, with a
    ``listener`` label: each server's URL), and any other request with 404. Serve it
    on a port of its own, e.g.::

        serve(tcp(("0.0.0.0", 9100)), threaded(), metrics_handler(app_server))

    Needs prometheus-client (``pip install 'composerv[metrics]'``), checked now.
    """
    _prometheus()
    # Read now: a closed server's socket has no address any more.
    listeners = [(url_of(server.socket), server) for server in servers]

    def answer(conn: Connection) -> None:
        request = conn.readline().split()
        for _ in range(_MAX_REQUEST_LINES):  # the headers, which say nothing needed here
            if conn.readline() in (b"\r\n", b"\n", b""):
                break
        if request[:2] == [b"GET", b"/metrics"]:
            body = metrics_text([(url, server.stats()) for url, server in listeners])
            status = b"200 OK"
        else:
            body, status = b"only GET /metrics is served here\n", b"404 Not Found"
        conn.send_all(
            b"HTTP/1.1 " + status + b"\r\nContent-Type: " + _CONTENT_TYPE.encode()
            + b"\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body
        )  # fmt: skip

    return stream_handler(answer)
