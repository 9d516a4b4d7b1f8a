"""Run the side-by-side echo benchmark: stdlib socketserver, asyncio and composerv.

Drives the shared harness (bench/run.py: a C load generator that checks every
byte, servers run as subprocesses, interleaved rounds) and adds a composerv echo
server per concurrency (benchmarks/servers/composerv_echo.py). Run on demand,
never in CI; it takes 20-50 minutes:

    python benchmarks/run.py --bench /path/to/bench [--rounds 3] [--duration 3] [--quick]

Three passes. The first runs every server over loopback TCP and UDP, plus RSS with
1000 idle connections. The other two are close comparisons: pairs of servers within
about 10% of each other, while single rounds on a shared VM move by 20% and a host
hiccup can slow every server started in a window of 20 s. In the first pass the
composerv servers run one after another, so such a window can hit them all and no
reference. The close passes run only the servers compared, adjacent, for three
times as many rounds (``--close-rounds``):
- unix sockets: evented() against the raw selectors loop;
- loopback TCP: threaded() (byte echo and readline echo) against ThreadingTCPServer.
Each pass writes its tables to a results directory (printed at the end); the
ratios are to ThreadingTCPServer (stdlib_threading) and ThreadingUDPServer.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ECHO = os.path.join(HERE, "servers", "composerv_echo.py")

# name -> (concurrency, handler) for composerv_echo.py
TCP_SERVERS = {
    "cv_threaded": ("threaded", "stream"),
    # The same work as the stdlib peer, which echoes line by line.
    "cv_threaded_lines": ("threaded", "readline"),
    # pp128 holds 128 connections open: a pool serves one connection per worker.
    "cv_pooled": ("pooled:128", "stream"),
    "cv_pooled_msg": ("pooled:128", "lines"),
    "cv_evented": ("evented", "lines"),
    # One event loop per core: what a 2-core machine can do with composerv.
    "cv_evented_w2": ("w2+evented", "lines"),
    "cv_asyncio": ("asyncio", "async"),
    "cv_uvloop": ("uvloop", "async"),
}
UDP_SERVERS = {
    "cv_udp_sync": ("sync", "stream"),
    "cv_udp_threaded": ("threaded", "stream"),
    "cv_udp_pooled": ("pooled", "stream"),
    "cv_udp_pooled2": ("pooled:2", "stream"),
    "cv_udp_evented": ("evented", "lines"),
}
ECHO_KIND = {"stream": "bytes", "lines": "lines", "readline": "lines", "async": "bytes"}
REFERENCE_TCP = [
    "stdlib_sync",
    "stdlib_threading",
    "asyncio_streams",
    "asyncio_protocol",
    "uvloop_protocol",
    "selectors_raw",
]
REFERENCE_UDP = ["stdlib_udp_sync", "stdlib_udp_threading", "asyncio_udp", "raw_udp"]
IDLE = ["stdlib_threading", "asyncio_protocol", "selectors_raw", "cv_threaded", "cv_evented"]


def composerv_command(name: str) -> str:
    """The command that starts the composerv server `name` ({py} and {addr} to fill)."""
    if name in UDP_SERVERS:
        concurrency, handler = UDP_SERVERS[name]
        return f"{{py}} {ECHO} {concurrency} {handler} udp:{{addr}}"
    concurrency, handler = TCP_SERVERS[name]
    return f"{{py}} {ECHO} {concurrency} {handler} {{addr}}"


def server_args(servers: dict[str, tuple[str, str]], option: str) -> list[str]:
    args: list[str] = []
    for name, (_, handler) in servers.items():
        args += [option, f"{name}={composerv_command(name)}"]
        args += ["--echo", f"{name}={ECHO_KIND[handler]}"]
    return args


# Close comparisons: (transport, scenarios, reference servers, composerv servers).
CLOSE_PASSES = [
    ("unix", "pp16,pp128", ["stdlib_threading", "selectors_raw"], ["cv_evented"]),
    (
        "tcp",
        "pp1,pp16,pp128,conn16,bulk",
        ["stdlib_threading"],
        ["cv_threaded", "cv_threaded_lines"],
    ),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bench", required=True, help="the shared bench/ folder (has run.py)")
    parser.add_argument("--rounds", default="3")
    parser.add_argument("--duration", default="5")
    parser.add_argument("--quick", action="store_true", help="one short round: a smoke test")
    parser.add_argument(
        "--close-rounds", help="rounds of the close-comparison passes (default: 3x --rounds)"
    )
    parser.add_argument("--skip-close", action="store_true")
    args = parser.parse_args()
    harness = [sys.executable, os.path.join(args.bench, "run.py")]

    def run(rounds: str, *options: str) -> None:
        timing = ["--quick"] if args.quick else ["--rounds", rounds, "--duration", args.duration]
        subprocess.run([*harness, *timing, *options], check=True)

    tcp_names = REFERENCE_TCP + list(TCP_SERVERS)
    udp_names = REFERENCE_UDP + list(UDP_SERVERS)
    run(
        args.rounds,
        *server_args(TCP_SERVERS, "--server"),
        *server_args(UDP_SERVERS, "--udp-server"),
        "--only",
        ",".join(tcp_names + udp_names),
        "--idle",
        "1000",
        "--idle-servers",
        ",".join(IDLE),
    )
    if args.skip_close:
        return
    close_rounds = args.close_rounds or str(3 * int(args.rounds))
    for transport, scenarios, references, ours in CLOSE_PASSES:
        run(
            close_rounds,
            *server_args({name: TCP_SERVERS[name] for name in ours}, "--server"),
            "--transport",
            transport,
            "--scenarios",
            scenarios,
            "--only",
            ",".join(references + ours),
        )


if __name__ == "__main__":
    main()
