"""The performance targets, and their verdicts from a run's results.

A target is a goal and its rows: each row compares one server with a reference
in one pass (lineup.py), on the pass's scenarios, from the harness's
summary.json of that pass. A row is met when every ratio of medians reaches its
threshold and neither server had an error, a failed run or a stalled connection.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lineup import (
    BASE_SUFFIX,
    COMPAT_THREADING,
    COMPOSED,
    EVENTED,
    EVERY_TCP_SCENARIO,
    THREADED_IDIOMS,
    UDP_EVENTED,
    UDP_SCENARIOS,
    UDP_SYNC_IDIOMS,
    Ours,
    Pass,
)

# What "no loss" against the base checkout allows: interleaved medians of the same
# code move by about this much between runs on the shared 2-core machine.
BASE_AT_LEAST = 0.95

# A pass's summary.json as the harness writes it: {"cells": {"SERVER|SCENARIO": {...}},
# "idle": [{"server": ..., "kib_per_conn": ...}]}.
Summary = Mapping[str, Any]


@dataclass(frozen=True)
class Row:
    """One line of the table of targets."""

    server: str
    measured: str
    spread: str
    verdict: str


@dataclass(frozen=True)
class RatioCheck:
    """`server`'s median rate over `reference`'s, on each of `scenarios`, at least `at_least`."""

    server: Ours
    pass_name: str
    reference: str
    scenarios: tuple[str, ...]
    at_least: float

    def row(self, summary: Summary) -> Row:
        cells = summary["cells"]
        ratios, short, problems, spreads = [], [], [], []
        for scenario in self.scenarios:
            ours = cells.get(f"{self.server.name}|{scenario}")
            theirs = cells.get(f"{self.reference}|{scenario}")
            for name, cell in ((self.server.name, ours), (self.reference, theirs)):
                problems += _problems(name, scenario, cell)
                if cell and cell["spread_pct"] is not None:
                    spreads.append(cell["spread_pct"] / 2)
            if ours and theirs and ours["rate"] and theirs["rate"]:
                ratio = ours["rate"] / theirs["rate"]
                ratios.append(f"{scenario} {ratio:.2f}x")
                if ratio < self.at_least:
                    short.append(scenario)
        if problems:
            verdict = "not met: " + "; ".join(problems)
        elif short:
            verdict = f"not met: {', '.join(short)} under {self.at_least:.2f}x"
        else:
            verdict = "met"
        spread = f"±{max(spreads):.0f}%" if spreads else "-"
        return Row(_describe(self.server), ", ".join(ratios) or "-", spread, verdict)


@dataclass(frozen=True)
class MemoryCheck:
    """`server`'s RSS per idle connection at most `at_most_kib` KiB."""

    server: Ours
    pass_name: str
    at_most_kib: float

    def row(self, summary: Summary) -> Row:
        found = [r for r in summary["idle"] if r["server"] == self.server.name]
        if not found or "error" in found[0]:
            error = found[0]["error"] if found else "not measured"
            return Row(_describe(self.server), "-", "-", f"not met: {error}")
        kib = found[0]["kib_per_conn"]
        measured = f"{kib:.1f} KiB/conn, threads: {found[0]['threads']}"
        verdict = "met" if kib <= self.at_most_kib else f"not met (> {self.at_most_kib} KiB)"
        return Row(_describe(self.server), measured, "-", verdict)


Check = RatioCheck | MemoryCheck


@dataclass(frozen=True)
class Target:
    """A goal and the rows that decide it."""

    name: str
    """Its name for ``--only-targets``."""
    goal: str
    checks: tuple[Check, ...]

    @property
    def passes(self) -> set[str]:
        return {check.pass_name for check in self.checks}


def _problems(name: str, scenario: str, cell: Mapping[str, Any] | None) -> list[str]:
    if cell is None or cell["rate"] is None:
        fatal = cell["fatal"][0] if cell and cell["fatal"] else "not measured"
        return [f"{name} {scenario}: {fatal}"]
    found = []
    if cell["errors"]:
        found.append(f"{name} {scenario}: {cell['errors']} errors")
    if cell["stalled"]:
        found.append(f"{name} {scenario}: {cell['stalled']} stalled connections")
    return found


def _describe(server: Ours) -> str:
    return f"{server.name} ({server.what})"


def _each_server(
    servers: Iterable[Ours],
    pass_name: str,
    reference: str,
    scenarios: tuple[str, ...],
    at_least: float,
) -> tuple[RatioCheck, ...]:
    return tuple(RatioCheck(s, pass_name, reference, scenarios, at_least) for s in servers)


def _each_transport(
    server: Ours, reference: str, scenarios: tuple[str, ...], at_least: float
) -> tuple[RatioCheck, ...]:
    """The check over TCP and over unix sockets: the evented passes run both."""
    return tuple(
        RatioCheck(server, f"evented-{transport}", reference, scenarios, at_least)
        for transport in ("tcp", "unix")
    )


TARGETS = (
    Target(
        "evented",
        "evented() + message_handler >= 1.0x uvloop_protocol at pp16 and pp128, TCP then unix",
        _each_transport(EVENTED, "uvloop_protocol", ("pp16", "pp128"), 1.0),
    ),
    Target(
        "threaded",
        "threaded() >= 1.0x ThreadingTCPServer (stdlib_threading) with every idiom",
        _each_server(THREADED_IDIOMS, "threaded", "stdlib_threading", EVERY_TCP_SCENARIO, 1.0),
    ),
    Target(
        "compat",
        "compat.socketserver.ThreadingTCPServer >= 1.0x the stdlib's",
        _each_server((COMPAT_THREADING,), "threaded", "stdlib_threading", EVERY_TCP_SCENARIO, 1.0),
    ),
    Target(
        "udp-sync",
        "sync() UDP >= 1.0x stdlib UDPServer (stdlib_udp_sync) with every idiom",
        _each_server(UDP_SYNC_IDIOMS, "udp", "stdlib_udp_sync", UDP_SCENARIOS, 1.0),
    ),
    Target(
        "udp-evented",
        "evented() UDP >= 0.9x raw_udp",
        _each_server((UDP_EVENTED,), "udp", "raw_udp", UDP_SCENARIOS, 0.9),
    ),
    Target(
        "evented-bulk",
        "evented() bulk of lines >= 0.8x selectors_raw bulk, TCP then unix",
        _each_transport(EVENTED, "selectors_raw", ("bulk",), 0.8),
    ),
    Target(
        "composing",
        "evented() with layers, and a session, >= 0.9x the bare message handler at pp16 and pp128",
        _each_server(COMPOSED, "composing", EVENTED.name, ("pp16", "pp128"), 0.9),
    ),
    Target(
        "memory",
        "evented() under 2 KiB of RSS per idle connection (1000 connections)",
        (MemoryCheck(EVENTED, "idle", 2.0),),
    ),
)
TARGET_NAMES = tuple(target.name for target in TARGETS)


def base_target(passes: Iterable[Pass]) -> Target:
    """Each of our servers against its twin running the base checkout, on its pass's scenarios."""
    checks = tuple(
        RatioCheck(
            server, p.name, server.name + BASE_SUFFIX, p.scenarios_for(server), BASE_AT_LEAST
        )
        for p in passes
        if not p.idle
        for server in p.ours
        if not server.name.endswith(BASE_SUFFIX)
    )
    return Target(
        "base", f"this checkout >= {BASE_AT_LEAST}x the base checkout (--base-root)", checks
    )


def table(targets: Iterable[Target], summaries: Mapping[str, Summary]) -> str:
    """The markdown table of `targets`' rows, from the summaries of the passes that ran."""
    lines = [
        "| target | server | pass | measured (ratio to the reference) | spread | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for target in targets:
        goal = target.goal  # on the target's first row only
        for check in target.checks:
            summary = summaries.get(check.pass_name)
            if summary is None:
                continue
            row = check.row(summary)
            cells = (goal, row.server, check.pass_name, row.measured, row.spread, row.verdict)
            lines.append("| " + " | ".join(cells) + " |")
            goal = ""
    return "\n".join(lines)
