"""The results page bench/run writes: results.md, with results.json, auto.json and the charts beside it.

bench/__main__.py measures; this turns the measurements into the page (report.py makes its tables).
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict

from pyserve_template import compat, values

from . import auto, report
from .auto import Decision
from .contenders import CONTENDERS, default_limits
from .harness import Measurement
from .plan import main_quota
from .workloads import WORKLOADS


def write_report(
    args: argparse.Namespace,
    measurements: list[Measurement],
    decisions: list[Decision],
    command: str,
    about: list[str],
    run_name: str,
) -> None:
    """results.md, results.json, auto.json and the charts; the choices and targets on the console."""
    memory_mib = values.parse_memory(args.memory) / values.MIB
    result = report.cells(measurements, memory_mib)
    committed = {(i, w): compat.auto_server(i, w)[0] for i in compat.INTERFACES for w in compat.WORKLOADS}
    auto_servers = {**committed, **{(d.interface, d.workload): d.server for d in decisions}}
    cpus = main_quota(tuple(args.cpus))
    checked = report.targets(result, auto_servers, cpus, args.connections)
    titles = {name: contender.title for name, contender in CONTENDERS.items()}
    heading = f"{args.memory}, {args.connections} connections, {args.duration:g} s per run x {args.rounds} rounds"
    markdown = render(result, checked, decisions, titles, args, command, about, heading, cpus)
    (args.out / "results.md").write_text(markdown)
    (args.out / "results.json").write_text(
        json.dumps({"command": command, "machine": about, "runs": [asdict(m) for m in measurements]}, indent=1)
    )
    if decisions:
        (args.out / "auto.json").write_text(json.dumps(auto.as_json(decisions, run_name), indent=1) + "\n")
    report.chart(result, args.out / "results.png", f"{cpus:g} CPU quota, {heading}", cpus)
    report.growth_chart(result, args.out / "growth.png", f"{cpus:g} CPU quota, {args.memory}")
    print()
    for decision in decisions:
        print(f"bench: auto for {decision.interface} {decision.workload}: {decision.server}: {decision.reason}")
    for target in checked:
        print(f"bench: {'met   ' if target.met else 'MISSED'} {target.text}")
    for line in report.growth_findings(result):
        print(f"bench: growth: {line}")


def render(
    result: list[report.Cell],
    checked: list[report.Target],
    decisions: list[Decision],
    titles: dict[str, str],
    args: argparse.Namespace,
    command: str,
    about: list[str],
    heading: str,
    cpus: float,
) -> str:
    """results.md: every server, what `auto` picks, the variants, the targets, the contenders, how
    cost grows, every figure, the setups and the workloads."""
    contenders = [c for c in result if "contenders" in c.parts]
    workloads = [WORKLOADS[name] for name in dict.fromkeys(c.workload for c in result)]
    described = dict.fromkeys((c.contender, c.stack) for c in contenders)
    lines = [
        "# Benchmark results",
        "",
        f"`{command}`: {heading}.",
        "",
        *(f"- {line}" for line in about),
        "- Each app server runs in a cgroup of its own with the CPU quota; nginx and wrk run outside it, on the"
        f" same {os.cpu_count()} cores. A 2-CPU quota is not measured on a 2-core machine: wrk and nginx would"
        " take CPU the app server is meant to have.",
        "",
    ]
    if any("servers" in c.parts for c in result):
        lines += ["## Every server", ""]
        for quota in args.cpus:
            lines += [f"### {quota:g} CPU", "", report.servers_table(result, quota), ""]
        lines += [
            "Each cell: requests/s (its share of the physical limit / of the stack's limit), p99 in ms. The"
            " physical limit: connections / the work's own latency (Little's law), and the CPU quota / the app's"
            " own CPU time per request, whichever is lower. The stack's limit adds the floor, the CPU this"
            " server and framework spend on an empty request (`/api/io?ms=0`), to each request's own work: the"
            " first ratio says how close the template gets to what the hardware allows, the second separates"
            " what the server choice costs from what the tuning loses. Static files have neither: their ratio"
            " is to the best server for that framework. (!) marks errors, OOM kills or a failed start.",
            "",
        ]
    if decisions:
        lines += [
            "## What `auto` picks",
            "",
            f"At {auto.CHOICE_CPUS:g} CPU, among the servers with no caveat in the fault suite, the best geometric"
            f" mean of requests/s over the frameworks, with p99 within {auto.P99_BOUND:g} x the best"
            f" (+ {auto.P99_SLACK_MS} ms). Within {report.NOISE_FLOOR:.0%} of the best, what `auto` picked before"
            " this run stays: from one run to the next the close ones trade places, and a change needs a margin.",
            "",
            *(f"- {d.interface.upper()} {d.workload}: **{d.server}**: {d.reason}" for d in decisions),
            "",
        ]
    variants = report.variants_table(result, titles)
    if variants:
        lines += ["## Variants", "", variants, ""]
    lines += ["## Targets", "", *(f"- {'met' if t.met else '**missed**'}: {t.text}" for t in checked), ""]
    if contenders:
        servers = ", ".join(
            f"{c.stack.upper()} {WORKLOADS[c.workload].title}: {c.title}"
            for c in contenders
            if c.contender == "generated"
        )
        lines += [
            f"## Against other setups ({cpus:g} CPU)",
            "",
            report.summary_table(contenders, titles),
            "",
            f"generated runs on the stack `auto` picks for each workload ({servers}). Ratios as above, or to the"
            " best contender for static files.",
            "",
        ]
    if report.growth_cells(result):
        lines += [
            "## How cost grows",
            "",
            report.growth_table(result),
            "",
            *(f"- {line}" for line in report.growth_findings(result)),
            "",
            "![growth](growth.png)",
            "",
        ]
    lines += [
        "## Every figure",
        "",
        report.full_table(result, titles),
        "",
        "spread: (highest - lowest) / mean requests/s over the rounds. Peak memory: the cgroup's"
        " (page cache included), what the OOM killer compares with the limit. CPU ms/req: the cgroup's"
        " CPU time over the measured run / requests. processes: in the cgroup under load.",
        "",
        *report.database_section(result, titles),
        "## Setups",
        "",
        *(
            f"- **{CONTENDERS[name].title}**: {CONTENDERS[name].source}. {stack.upper()}:"
            f" `{CONTENDERS[name].describe(stack, default_limits(cpus, args.memory, args.host_cpus))}`"
            for name, stack in dict.fromkeys(
                [*described, *((c.contender, c.stack) for c in result if c.contender != "generated")]
            )
        ),
        "",
        "## Workloads",
        "",
        *(f"- **{w.title}**: {w.about}." for w in workloads),
        "",
    ]
    return "\n".join(lines)
