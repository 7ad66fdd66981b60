"""`server=auto` by measurement: for each interface and workload, the server with the best measured
throughput within a p99 bound, among the servers that survive the fault suite.

The servers part of a benchmark run measures every server with two frameworks per interface; the
choice compares them at 1 CPU on the workload a project answers (io_bound, mixed, cpu_bound). The
template reads the result from bench/results/auto.json (pyserve_template/compat.py), and
tests/test_auto_choice.py keeps that file in step with bench/results/results.json.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from pyserve_template import compat

from .report import NOISE_FLOOR, Cell

# The workload a project answers -> the benchmark's workload that measures it.
MEASURED_BY = {"io_bound": "io", "mixed": "mixed", "cpu_bound": "cpu"}
# The quota the choice is made at: the targets are at 1 CPU.
CHOICE_CPUS = 1.0
# A server whose p99 is above this multiple of the best qualifying p99 on a cell (plus the slack,
# for cells whose p99 is a few ms) is out: throughput bought with a tail is not the best.
P99_BOUND = 2
P99_SLACK_MS = 10


@dataclass(frozen=True)
class Decision:
    interface: str
    workload: str  # the answer: io_bound, mixed or cpu_bound
    server: str
    reason: str
    # server -> framework -> [req/s, p99 ms], as measured
    figures: dict[str, dict[str, list[float]]]
    incumbent: str  # what `auto` picked before this run


def qualifies(server: str) -> str | None:
    """Why a server cannot be `auto`, or None: reliability is a condition, not a tie-breaker."""
    caveats = compat.FAULT_CAVEATS.get(server)
    return f"fails the fault suite ({', '.join(caveats)})" if caveats else None


def choose(found: list[Cell], run: str, incumbents: dict[tuple[str, str], str]) -> list[Decision]:
    """One decision per interface and workload that the servers part measured at CHOICE_CPUS.
    `incumbents`: (interface, workload) -> what `auto` picked before, kept unless beaten beyond noise."""
    decisions = []
    measured = [c for c in found if "servers" in c.parts and c.contender == "generated" and c.cpus == CHOICE_CPUS]
    for interface in compat.INTERFACES:
        for answer, workload in MEASURED_BY.items():
            here = [c for c in measured if c.stack == interface and c.workload == workload]
            if here:
                decisions.append(_decide(interface, answer, here, run, incumbents[interface, answer]))
    return decisions


def _decide(interface: str, answer: str, found: list[Cell], run: str, incumbent: str) -> Decision:
    frameworks = list(dict.fromkeys(c.framework for c in found))
    servers = [s for s in compat.SERVERS if any(c.server == s for c in found)]
    by = {(c.server, c.framework): c for c in found}
    figures = {
        s: {
            f: [round(by[s, f].requests_per_s), round(by[s, f].mean("p99_ms") or 0)] for f in frameworks if (s, f) in by
        }
        for s in servers
    }
    excluded: dict[str, str] = {}
    for server in servers:
        why = qualifies(server)
        if why is None and not all((server, f) in by and by[server, f].clean for f in frameworks):
            why = "had errors or a failed start"
        if why:
            excluded[server] = why
    candidates = [s for s in servers if s not in excluded]
    for framework in frameworks:
        bound = P99_BOUND * min(by[s, framework].mean("p99_ms") or 0 for s in candidates) + P99_SLACK_MS
        for server in list(candidates):
            p99 = by[server, framework].mean("p99_ms") or 0
            if p99 > bound:
                excluded[server] = f"p99 {p99:.0f} ms with {framework}, over the bound of {bound:.0f} ms"
                candidates.remove(server)
    if not candidates:
        raise SystemExit(f"bench: no server qualifies for {interface} {answer}: {excluded}")
    # Throughput relative to the best candidate, per framework; a server's score is their geometric mean.
    best = {f: max(by[s, f].requests_per_s for s in candidates) for f in frameworks}
    score = {s: math.prod(by[s, f].requests_per_s / best[f] for f in frameworks) ** (1 / len(frameworks))
             for s in candidates}  # fmt: skip
    top = max(score.values())
    # Within noise of the best, what `auto` picked before stays: a change needs a margin the noise
    # cannot give (one run to the next, the close ones trade places).
    close = [s for s in candidates if score[s] >= top * (1 - NOISE_FLOOR)]
    server = incumbent if incumbent in close else max(close, key=lambda s: score[s])
    measured = ", ".join(f"{f} {by[server, f].requests_per_s:.0f} req/s (p99 {by[server, f].mean('p99_ms'):.0f} ms)"
                         for f in frameworks)  # fmt: skip
    others = [f"{s} {score[s] / score[server]:.2f} of it" for s in candidates if s != server]
    others += [f"{s} out: {why}" for s, why in excluded.items()]
    tie = f" (kept: within {NOISE_FLOOR:.0%} of the fastest)" if score[server] < top else ""
    compared = f"; {'; '.join(others)}" if others else ""
    reason = (
        f"measured best for {answer.replace('_', '-')} {interface.upper()}{tie}: {measured} at"
        f" {CHOICE_CPUS:g} CPU{compared} ({run})"
    )
    return Decision(interface, answer, server, reason, figures, incumbent)


def as_json(decisions: list[Decision], run: str) -> dict:
    return {"run": run, "choices": [asdict(decision) for decision in decisions]}
