"""The servers the benchmark runs and the passes that compare them.

A pass is one run of the shared harness: a few servers, adjacent and interleaved
over rounds, on the scenarios that a target compares them on. The peers are the
harness's own servers (its names); ours are started from benchmarks/servers/, and
with ``--base-root`` each gets a twin, ``NAME@base``, running another checkout of
composerv beside it.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
from dataclasses import dataclass

SERVERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "servers")
BASE_SUFFIX = "@base"


@dataclass(frozen=True)
class Ours:
    """An echo server of this repository: a script of benchmarks/servers/ and its arguments."""

    name: str
    """Its name in the harness's tables."""
    arguments: str
    """The script and what comes before ADDR, e.g. ``composerv_echo.py threaded rfile``."""
    echo: str
    """What it echoes, for the harness's table: ``lines`` or ``bytes`` (``dgram`` on UDP)."""
    what: str
    """The idiom, in a few words, for the tables of targets."""
    root: str | None = None
    """The composerv checkout it runs (``--root``); None: this repository."""

    @property
    def udp(self) -> bool:
        return self.echo == "dgram"

    def command(self) -> str:
        """The harness's command template: ``{py}`` and ``{addr}`` are filled in by it."""
        script, _, rest = self.arguments.partition(" ")
        words = [os.path.join(SERVERS, script), *shlex.split(rest)]
        if self.root is not None:
            words += ["--root", self.root]
        addr = "udp:{addr}" if self.udp else "{addr}"
        return f"{{py}} {shlex.join(words)} {addr}"

    def twin(self, root: str) -> Ours:
        """The same server running the checkout `root`, named ``NAME@base``."""
        return dataclasses.replace(self, name=self.name + BASE_SUFFIX, root=root)


def _threaded(name: str, handler: str, echo: str, what: str) -> Ours:
    return Ours(name, f"composerv_echo.py threaded {handler}", echo, f"threaded() + {what}")


def _udp(name: str, concurrency: str, handler: str, what: str) -> Ours:
    return Ours(name, f"composerv_echo.py {concurrency} {handler}", "dgram", what)


# threaded() with every idiom of a blocking stream handler.
THREADED_IDIOMS = (
    _threaded("cv_threaded", "stream", "bytes", "conn.recv / conn.send_all"),
    _threaded("cv_threaded_lines", "readline", "lines", "conn.readline / conn.send_all"),
    _threaded("cv_threaded_rfile", "rfile", "lines", "conn.rfile.readline / conn.wfile.write"),
    _threaded("cv_threaded_rfile_iter", "rfile-iter", "lines", "for line in conn.rfile"),
    _threaded("cv_threaded_rfile_read", "rfile-read", "bytes", "conn.rfile.read1 / wfile.write"),
    _threaded("cv_threaded_classic", "classic", "lines", "request_handler(stdlib class)"),
    _threaded(
        "cv_threaded_compat_classic", "compat-classic", "lines", "request_handler(compat class)"
    ),
)
COMPAT_THREADING = Ours(
    "compat_threading",
    "compat_threading.py",
    "lines",
    "compat.socketserver.ThreadingTCPServer + the stdlib peer's handler",
)
EVENTED = Ours(
    "cv_evented", "composerv_echo.py evented lines", "lines", "evented() + message_handler(lines)"
)
# What composing handlers costs on the fast path, beside the bare message handler.
COMPOSED = (
    Ours(
        "cv_evented_layered",
        "composerv_echo.py evented lines-layered",
        "lines",
        "evented() + layered(lines, allow_from, rate_limit(messages=True), on_error)",
    ),
    Ours(
        "cv_evented_session",
        "composerv_echo.py evented session",
        "lines",
        "evented() + session_handler(count)",
    ),
)
UDP_SYNC_IDIOMS = (
    _udp("cv_udp_sync", "sync", "stream", "sync() + datagram_handler"),
    _udp("cv_udp_sync_msg", "sync", "lines", "sync() + message_handler(datagrams())"),
    _udp("cv_udp_sync_classic", "sync", "classic", "sync() + request_handler(stdlib class)"),
    _udp(
        "cv_udp_sync_compat_classic",
        "sync",
        "compat-classic",
        "sync() + request_handler(compat class)",
    ),
)
UDP_EVENTED = _udp("cv_udp_evented", "evented", "lines", "evented() + message_handler(datagrams())")
OTHERS = (
    # pp128 holds 128 connections open: a pool serves one connection per worker.
    Ours("cv_pooled", "composerv_echo.py pooled:128 stream", "bytes", "pooled(128) + conn.recv"),
    Ours("cv_pooled_msg", "composerv_echo.py pooled:128 lines", "lines", "pooled(128) + lines"),
    # One event loop per core: what a 2-core machine can do with composerv.
    Ours("cv_evented_w2", "composerv_echo.py w2+evented lines", "lines", "workers(2, evented())"),
    Ours("cv_asyncio", "composerv_echo.py asyncio async", "bytes", "asyncio_loop()"),
    Ours("cv_uvloop", "composerv_echo.py uvloop async", "bytes", "asyncio_loop(uvloop=True)"),
    _udp("cv_udp_threaded", "threaded", "stream", "threaded() + datagram_handler"),
    _udp("cv_udp_pooled", "pooled", "stream", "pooled() + datagram_handler"),
    _udp("cv_udp_pooled2", "pooled:2", "stream", "pooled(workers=2) + datagram_handler"),
)
ALL_OURS = {
    server.name: server for server in (*THREADED_IDIOMS, COMPAT_THREADING, EVENTED, *COMPOSED)
}
ALL_OURS.update({server.name: server for server in (*UDP_SYNC_IDIOMS, UDP_EVENTED, *OTHERS)})

# The harness's scenarios over UDP; the others are over streams.
UDP_SCENARIOS = ("udp16",)
EVERY_TCP_SCENARIO = ("pp1", "pp16", "pp128", "conn16", "bulk")
EVENTED_SCENARIOS = ("pp16", "pp128", "bulk")
EVENTED_PEERS = ("uvloop_protocol", "selectors_raw", "c_epoll_ref")
OTHER_PEERS = (
    "stdlib_threading",
    "asyncio_streams",
    "uvloop_protocol",
    "stdlib_udp_threading",
    "stdlib_udp_sync",
)


@dataclass(frozen=True)
class Pass:
    """One run of the harness over a few servers."""

    name: str
    """Its directory under the run's results, and its name in targets."""
    title: str
    transport: str
    """``tcp`` or ``unix`` (for the stream scenarios; UDP always runs over 127.0.0.1)."""
    scenarios: tuple[str, ...]
    peers: tuple[str, ...]
    """The harness's servers, by its names."""
    ours: tuple[Ours, ...]
    baseline: str = "stdlib_threading"
    """The reference of the harness's ratio column for TCP scenarios."""
    udp_baseline: str = "stdlib_udp_sync"
    idle: int = 0
    """If not 0: measure only the servers' memory with that many idle connections."""

    def scenarios_for(self, server: Ours) -> tuple[str, ...]:
        """The scenarios of this pass that `server` runs: UDP ones for a UDP server."""
        return tuple(s for s in self.scenarios if (s in UDP_SCENARIOS) == server.udp)

    def with_twins(self, root: str) -> Pass:
        """The pass with each of our servers followed by its twin running checkout `root`."""
        ours = tuple(server for own in self.ours for server in (own, own.twin(root)))
        return dataclasses.replace(self, ours=ours)

    def harness_options(self) -> list[str]:
        """The harness's options for this pass (without rounds, timing and output)."""
        options: list[str] = []
        for server in self.ours:
            option = "--udp-server" if server.udp else "--server"
            options += [option, f"{server.name}={server.command()}"]
            options += ["--echo", f"{server.name}={server.echo}"]
        names = ",".join([*self.peers, *(server.name for server in self.ours)])
        if self.idle:
            return [*options, "--idle", str(self.idle), "--idle-only", "--idle-servers", names]
        return [
            *options,
            *("--transport", self.transport, "--scenarios", ",".join(self.scenarios)),
            *("--only", names, "--baseline", self.baseline, "--udp-baseline", self.udp_baseline),
        ]


PASSES = {
    p.name: p
    for p in (
        Pass(
            "threaded",
            "threaded() with every idiom, and compat, against ThreadingTCPServer over TCP",
            "tcp",
            EVERY_TCP_SCENARIO,
            ("stdlib_threading",),
            (*THREADED_IDIOMS, COMPAT_THREADING),
        ),
        *(
            Pass(
                f"evented-{transport}",
                f"evented() against uvloop, selectors and C over {transport.upper()}",
                transport,
                EVENTED_SCENARIOS,
                EVENTED_PEERS,
                (EVENTED,),
                baseline="uvloop_protocol",
            )
            for transport in ("tcp", "unix")
        ),
        Pass(
            "composing",
            "evented() with layers and with a session, beside the bare message handler",
            "tcp",
            ("pp16", "pp128"),
            ("uvloop_protocol",),
            (EVENTED, *COMPOSED),
            baseline="uvloop_protocol",
        ),
        Pass(
            "udp",
            "sync() and evented() on UDP with every idiom, against UDPServer and raw loops",
            "tcp",
            UDP_SCENARIOS,
            ("stdlib_udp_sync", "raw_udp", "c_udp_ref"),
            (*UDP_SYNC_IDIOMS, UDP_EVENTED),
        ),
        Pass(
            "others",
            "the other concurrencies, beside the stdlib, asyncio and uvloop",
            "tcp",
            (*EVERY_TCP_SCENARIO, *UDP_SCENARIOS),
            OTHER_PEERS,
            OTHERS,
            udp_baseline="stdlib_udp_threading",
        ),
        Pass(
            "idle",
            "server memory with 1000 idle connections",
            "tcp",
            (),
            ("stdlib_threading", "uvloop_protocol", "selectors_raw"),
            (THREADED_IDIOMS[0], EVENTED, COMPAT_THREADING),
            idle=1000,
        ),
    )
}
