"""Server CPU per operation, with the server and the load generator pinned to their own cores.

The side-by-side run (run.py) reports throughput, which on a shared 2-core VM moves
by 20-40% between rounds: the two processes share the cores with each other and
with the host's other guests. Pinning each to its own core and dividing the
server's CPU time (from /proc) by the operations the load generator counted gives
a per-operation cost that moves far less, and whose ratio between two servers is
the ratio their throughput would have if the server's core were the bottleneck.
Run on demand, never in CI; Linux only (taskset, /proc):

    python benchmarks/pinned.py --bench /path/to/bench --rounds 5 unix-pingpong-128
    python benchmarks/pinned.py --bench /path/to/bench udp-16 pingpong-16

A case is MODE-CLIENTS, MODE one of pingpong, connect, udp, or unix-pingpong /
unix-connect over unix sockets. Each case compares its servers in interleaved
rounds and prints a markdown table of the medians (and each round's values).
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from lineup import ALL_OURS  # beside this script

SERVER_CPU, LOADGEN_CPU = "1", "0"
TICK = os.sysconf("SC_CLK_TCK")
READY_TIMEOUT = 10.0

# case -> {name: command}; {py} is this Python, {bench} the shared bench folder,
# {addr} the address. The first server of a case is the reference for ratios; the
# composerv servers are lineup.py's, under the same names.
CASES: dict[str, dict[str, str]] = {
    "unix-pingpong": {
        "selectors_raw": "{py} {bench}/servers/selectors_raw.py {addr}",
        "cv_evented": ALL_OURS["cv_evented"].command(),
    },
    "pingpong": {
        "stdlib_threading": "{py} {bench}/servers/stdlib_tcp_threading.py {addr}",
        "cv_threaded_lines": ALL_OURS["cv_threaded_lines"].command(),
        "cv_threaded": ALL_OURS["cv_threaded"].command(),
        "cv_evented": ALL_OURS["cv_evented"].command(),
    },
    "connect": {
        "stdlib_threading": "{py} {bench}/servers/stdlib_tcp_threading.py {addr}",
        "cv_threaded": ALL_OURS["cv_threaded"].command(),
        "cv_pooled": ALL_OURS["cv_pooled"].command(),
    },
    "udp": {
        "stdlib_udp_threading": "{py} {bench}/servers/stdlib_udp_threading.py {addr}",
        "stdlib_udp_sync": "{py} {bench}/servers/stdlib_udp_sync.py {addr}",
        "cv_udp_sync": ALL_OURS["cv_udp_sync"].command(),
        "cv_udp_pooled": ALL_OURS["cv_udp_pooled"].command(),
    },
}
CASES["unix-connect"] = CASES["connect"]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process `pid` and all its threads, in seconds."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def pinned_server(command: str) -> Iterator[subprocess.Popen[str]]:
    """Start `command` on the server core; wait for its READY line; kill it after."""
    process = subprocess.Popen(
        ["taskset", "-c", SERVER_CPU, *shlex.split(command)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], READY_TIMEOUT)
        line = process.stdout.readline().strip() if ready else ""
        if line != "READY":
            raise RuntimeError(f"{command!r} did not print READY within {READY_TIMEOUT}s")
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=READY_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def measure(
    loadgen: str, mode: str, clients: int, command: str, duration: float
) -> dict[str, float]:
    """One run: server CPU us per operation and operations per second."""
    unix = mode.startswith("unix-")
    with tempfile.TemporaryDirectory() as scratch:
        addr = f"unix:{scratch}/s.sock" if unix else f"127.0.0.1:{free_port()}"
        with pinned_server(command.replace("{addr}", addr)) as server:
            run = ["taskset", "-c", LOADGEN_CPU, loadgen, mode.removeprefix("unix-"), addr]
            run += ["-c", str(clients), "-w", "0"]
            subprocess.run([*run, "-d", "1"], capture_output=True, check=True)  # warm up
            before = cpu_seconds(server.pid)
            out = subprocess.run(
                [*run, "-d", str(duration)], capture_output=True, text=True, check=False
            )
            used = cpu_seconds(server.pid) - before
    result = json.loads(out.stdout) if out.returncode == 0 else {"errors": out.returncode}
    if result.get("errors"):
        raise RuntimeError(f"{command!r}: the load generator failed: {out.stdout}{out.stderr}")
    ops = max(result["ops"], 1)
    return {"us_per_op": used / ops * 1e6, "rate": result["rate"]}


def run_case(case: str, args: argparse.Namespace, loadgen: str) -> str:
    mode, _, clients = case.rpartition("-")
    servers = CASES[mode]
    results: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
    for round_number in range(args.rounds):
        # Rotated each round, so no server always runs right after the same one.
        names = list(servers)
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            command = servers[name].format(py=sys.executable, bench=args.bench, addr="{addr}")
            results[name].append(measure(loadgen, mode, int(clients), command, args.duration))
            print(f"{case} round {round_number + 1} {name}: {results[name][-1]}", file=sys.stderr)
    reference = statistics.median(r["us_per_op"] for r in next(iter(results.values())))
    lines = [
        f"#### {case}: server CPU per operation, pinned, median of {args.rounds}",
        "",
        "| server | us/op | rate vs first (by CPU) | ops/s | us/op each round |",
        "|---|---|---|---|---|",
    ]
    for name, runs in results.items():
        cost = statistics.median(r["us_per_op"] for r in runs)
        rate = statistics.median(r["rate"] for r in runs)
        each = " ".join(f"{r['us_per_op']:.2f}" for r in runs)
        lines.append(f"| {name} | {cost:.2f} | {reference / cost:.2f}x | {rate:,.0f} | {each} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bench", required=True, help="the shared bench/ folder (has loadgen.c)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("cases", nargs="+", help="e.g. unix-pingpong-128, udp-16")
    args = parser.parse_args()
    if (os.cpu_count() or 1) < 2:
        parser.error("needs two CPUs: one for the server, one for the load generator")
    for case in args.cases:
        if case.rpartition("-")[0] not in CASES:
            parser.error(f"unknown case {case!r}: the modes are {', '.join(CASES)}")
    build = os.environ.get("BENCH_BUILD", os.path.join(tempfile.gettempdir(), "composerv-pinned"))
    os.makedirs(build, exist_ok=True)
    loadgen = os.path.join(build, "loadgen")
    source = os.path.join(args.bench, "loadgen.c")
    subprocess.run(["gcc", "-O2", "-Wall", "-o", loadgen, source], check=True)
    print("\n\n".join(run_case(case, args, loadgen) for case in args.cases))


if __name__ == "__main__":
    main()
