"""Run composerv's echo servers beside their peers, one pass per comparison, and judge the targets.

    python benchmarks/run.py --bench /work/shared/bench [--rounds N] [--duration S] [--quick]
                             [--only-targets a,b] [--base-root /work/baseline]

Drives the shared harness (its run.py: a C load generator that checks every
byte, servers as subprocesses, interleaved rounds) once per pass of lineup.py:
threaded() with every handler idiom and compat against ThreadingTCPServer;
evented() against uvloop, selectors and C over TCP and over unix sockets; UDP
against UDPServer and the raw loops; the other concurrencies; memory with 1000
idle connections. Then it prints the table of targets.py: each target's ratios
and whether it is met. ``--base-root DIR`` adds beside each of our servers its
twin running the checkout DIR (NAME@base), and a target "base" comparing them.
``--only-targets`` runs only the passes those targets need. Run on demand, never
in CI: a full run takes about 40 minutes (75 with ``--base-root``), ``--quick``
(one short round, a smoke test) 3 to 5. Results go to benchmarks/results/STAMP/
(STAMP-quick/ for --quick, which git ignores); see benchmarks/results/README.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from lineup import PASSES, Pass  # beside this script
from targets import TARGET_NAMES, TARGETS, Summary, Target, base_target, table

HERE = os.path.dirname(os.path.abspath(__file__))
REPOSITORY = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
# The harness runs every server with this interpreter (its README, "Setup").
BENCH_PYTHON = "/tmp/benchenv/bin/python"
BENCHENV_SETUP = (
    "python3 -m venv /tmp/benchenv && /tmp/benchenv/bin/pip install uvloop attrs typing-extensions"
)


def check_benchenv(roots: Sequence[str]) -> str | None:
    """Why the harness's interpreter cannot run our servers from `roots`, or None if it can."""
    if not os.path.exists(BENCH_PYTHON):
        return f"{BENCH_PYTHON} does not exist"
    for root in roots:
        probe = "import sys; sys.path.insert(0, sys.argv[1]); import composerv, uvloop"
        done = subprocess.run(
            [BENCH_PYTHON, "-c", probe, root], capture_output=True, text=True, check=False
        )
        if done.returncode:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            return f"{BENCH_PYTHON} cannot import uvloop, or composerv from {root}: {last}"
    return None


def checkout(root: str) -> dict[str, Any]:
    """Where `root` is in git: its commit, and whether tracked files differ from it."""

    def git(*arguments: str) -> str:
        done = subprocess.run(
            ["git", "-C", root, *arguments], capture_output=True, text=True, check=False
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    status = git("status", "--porcelain", "--untracked-files=no")
    return {"path": root, "commit": git("rev-parse", "HEAD") or None, "dirty": bool(status)}


def describe_checkout(found: dict[str, Any]) -> str:
    commit = (found["commit"] or "no git commit")[:12]
    return f"{found['path']} at {commit}" + (" with uncommitted changes" if found["dirty"] else "")


def run_pass(harness: list[str], timing: list[str], chosen: Pass, out: str) -> Summary:
    """Run the harness over one pass; its results go to `out`."""
    print(f"\n== pass {chosen.name}: {chosen.title}", file=sys.stderr, flush=True)
    command = [*harness, *timing, "--out", out, "--python", BENCH_PYTHON]
    subprocess.run([*command, *chosen.harness_options()], check=True)
    with open(os.path.join(out, "summary.json")) as file:
        summary: Summary = json.load(file)
    return summary


def pass_report(chosen: Pass, out: str) -> str:
    """The harness's report of a pass, under a heading naming the pass."""
    with open(os.path.join(out, "summary.md")) as file:
        _, _, rest = file.read().partition("\n")  # its own title: the stamp of the pass
    return f"## Pass {chosen.name}: {chosen.title}\n{rest}"


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bench", required=True, help="the shared bench/ folder (has run.py)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per pass")
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per run")
    parser.add_argument(
        "--quick", action="store_true", help="a smoke test: one round of 1 s runs, 32 MiB bulk"
    )
    parser.add_argument(
        "--only-targets",
        default="",
        help=f"run only the passes of these targets (comma list of {', '.join(TARGET_NAMES)})",
    )
    parser.add_argument(
        "--base-root",
        help="a checkout of composerv (e.g. a frozen main) to run beside ours, as NAME@base",
    )
    args = parser.parse_args()
    unknown = set(filter(None, args.only_targets.split(","))) - set(TARGET_NAMES)
    if unknown:
        parser.error(
            f"unknown targets {sorted(unknown)}: the targets are {', '.join(TARGET_NAMES)}"
        )
    if not os.path.isfile(os.path.join(args.bench, "run.py")):
        parser.error(f"--bench {args.bench!r} has no run.py: name the shared bench/ folder")
    return args


def main() -> None:
    args = arguments()
    roots = [REPOSITORY] + ([os.path.abspath(args.base_root)] if args.base_root else [])
    if problem := check_benchenv(roots):
        sys.exit(
            f"run.py: {problem}.\nThe harness runs every server with it; make it with\n"
            f"    {BENCHENV_SETUP}"
        )
    names = [name for name in args.only_targets.split(",") if name]
    chosen_targets: list[Target] = [t for t in TARGETS if not names or t.name in names]
    needed: set[str] = set().union(*(t.passes for t in chosen_targets)) if names else set(PASSES)
    passes = [p for name, p in PASSES.items() if name in needed]
    if args.base_root:
        passes = [p.with_twins(roots[1]) for p in passes]
        chosen_targets.append(base_target(passes))

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S") + ("-quick" if args.quick else "")
    results = os.path.join(RESULTS, stamp)
    harness = [sys.executable, os.path.join(args.bench, "run.py")]
    timing = (
        ["--quick"]
        if args.quick
        else ["--rounds", str(args.rounds), "--duration", str(args.duration)]
    )
    checkouts = [checkout(root) for root in roots]
    started = datetime.datetime.now().isoformat(timespec="seconds")
    summaries: dict[str, Summary] = {}
    reports = []
    for chosen in passes:
        out = os.path.join(results, chosen.name)
        summaries[chosen.name] = run_pass(harness, timing, chosen, out)
        reports.append(pass_report(chosen, out))

    verdicts = table(chosen_targets, summaries)
    with open(os.path.join(results, "run.json"), "w") as file:
        json.dump(
            {
                "command": ["python", "benchmarks/run.py", *sys.argv[1:]],
                "started": started,
                "finished": datetime.datetime.now().isoformat(timespec="seconds"),
                "checkouts": checkouts,
                "bench": os.path.abspath(args.bench),
                "passes": [p.name for p in passes],
            },
            file,
            indent=1,
        )
    header = [
        f"# composerv echo benchmark {stamp}",
        "",
        "    " + shlex.join(["python", "benchmarks/run.py", *sys.argv[1:]]),
        "",
        "Ran " + "; base: ".join(describe_checkout(found) for found in checkouts) + ".",
        "",
        "## Targets",
        "",
        verdicts,
        "",
    ]
    with open(os.path.join(results, "summary.md"), "w") as file:
        file.write("\n".join(header + reports))
    print(f"\nResults: {results}\n\n{verdicts}")


if __name__ == "__main__":
    main()
