"""The benchmark: the generated stack against the lemonade stand, the articles' advice and popular templates.

    bench/run                                  # everything, as the README's figures were made
    bench/run --stacks wsgi --workloads io,cpu --contenders generated,articles --rounds 1

It bakes a WSGI (Flask on gunicorn) and an ASGI (FastAPI on uvicorn) project with the template's
default answers, and measures each contender on each workload side by side in one run: every app
server in a fresh cgroup with the container's CPU quota and memory limit, behind the project's
nginx, loaded by wrk on 127.0.0.1. Rounds run one after the other over every cell, so that a
machine growing slower or faster during the run moves all contenders alike.

Writes bench/results/results.md (the tables), results.png (the chart) and results.json (every run).
It needs root (for the cgroups), nginx and wrk: bench/run installs the last two.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from pyserve_template import tuning
from pyserve_template.matrix import BENCH_STACKS as STACKS
from pyserve_template.postgres import running_postgres

from . import report
from .contenders import CONTENDERS, Contender, Limits, default_limits
from .harness import Bake, Load, Measurement, bake, measure
from .workloads import DB_SERVER_CONNECTIONS, WORKLOADS, Workload

HERE = Path(__file__).resolve().parent
TEMPLATE_ROOT = HERE.parent


def names(known: dict) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        chosen = [name.strip() for name in text.split(",") if name.strip()]
        unknown = [name for name in chosen if name not in known]
        if unknown or not chosen:
            raise argparse.ArgumentTypeError(f"{','.join(unknown) or text!r}: choose from {', '.join(known)}")
        return chosen

    return parse


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stacks", type=names(STACKS), default=list(STACKS), help="wsgi, asgi (default both)")
    parser.add_argument("--workloads", type=names(WORKLOADS), default=list(WORKLOADS), help=", ".join(WORKLOADS))
    parser.add_argument("--contenders", type=names(CONTENDERS), default=list(CONTENDERS), help=", ".join(CONTENDERS))
    parser.add_argument("--cpus", type=lambda text: tuning.parse_cpus(text, "--cpus"), default=1.0)
    parser.add_argument("--memory", default="512MiB", help="the container's memory limit (default 512MiB)")
    parser.add_argument(
        "--host-cpus", type=int, help="what cpu_count() returns, for the cpu_count contender (default: this machine)"
    )
    parser.add_argument("--connections", type=int, default=64, help="wrk's connections, all asking back to back")
    parser.add_argument("--duration", type=float, default=8, help="seconds measured per run")
    parser.add_argument("--warm-up", type=float, default=2, help="seconds of load before each measured run")
    parser.add_argument("--rounds", type=int, default=2, help="passes over every cell (their spread is the noise)")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="where the report goes")
    parser.add_argument("--workdir", type=Path, default=TEMPLATE_ROOT / ".cache" / "bench", help="the baked projects")
    args = parser.parse_args(argv)
    try:
        tuning.parse_memory(args.memory, "--memory")
    except tuning.TuningError as error:
        parser.error(str(error))
    for name in ("connections", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name}: {getattr(args, name)} is not >= 1")
    if args.duration <= 0 or args.warm_up < 0:
        parser.error("--duration must be > 0 and --warm-up >= 0")
    return args


def machine(baked: list[Bake]) -> list[str]:
    """What the figures came from, as the README quotes it."""
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor() or "unknown CPU",
    )  # fmt: skip
    nginx = subprocess.run(["nginx", "-v"], capture_output=True, text=True, check=False).stderr.strip()
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False).stdout.split("\n")[0]
    pins = sorted(
        {
            line.strip()
            for found in baked
            for line in (found.project / "requirements.txt").read_text().splitlines()
            if re.match(r"^[\w.\[\]-]+==", line.strip())
        }
    )
    return [
        f"{model}, {os.cpu_count()} cores, Linux {platform.release()}, Python {platform.python_version()}",
        f"{nginx.removeprefix('nginx version: ')}, {wrk.split(' [')[0]}; {', '.join(pins)}",
    ]


def runs_on(stack: str, workload: Workload, contender: Contender) -> bool:
    """Every contender where the app server's setup is what differs; the database's pool sizes on
    the database workload; the template alone elsewhere."""
    if stack not in contender.interfaces:
        return False
    if contender.database_only or workload.database:
        return workload.database and (contender.database_only or contender.name == "generated")
    return workload.every_contender or contender.name == "generated"


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    limits: Limits = default_limits(args.cpus, args.memory, args.host_cpus)
    memory_mib = tuning.parse_memory(args.memory) / tuning.MIB
    args.out.mkdir(parents=True, exist_ok=True)
    logs = args.workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    workloads = [WORKLOADS[name] for name in args.workloads]

    bakes: dict[tuple[str, str, str, bool], Bake] = {}
    for stack in args.stacks:
        for workload in workloads:
            key = (stack, workload.answer, workload.static_strategy, workload.database)
            if key not in bakes:
                print(f"bench: baking {stack}, {workload.answer}, static files from {key[2]} ...", flush=True)
                bakes[key] = bake(args.workdir, stack, **STACKS[stack], limits=limits, workload=workload)

    cells = [
        (stack, workload, CONTENDERS[name])
        for stack in args.stacks
        for workload in workloads
        for name in args.contenders
        if runs_on(stack, workload, CONTENDERS[name])
    ]
    total = len(cells) * args.rounds
    print(
        f"bench: {total} runs of {args.warm_up:g} + {args.duration:g} s, each app server confined to"
        f" {limits.cpus:g} CPU and {args.memory}, {args.connections} connections",
        flush=True,
    )
    load = Load(args.connections, args.duration, args.warm_up)
    measurements: list[Measurement] = []
    started = time.monotonic()
    with contextlib.ExitStack() as running:
        postgres = None
        if any(workload.database for workload in workloads):
            postgres = running.enter_context(running_postgres(DB_SERVER_CONNECTIONS))
        for round_ in range(1, args.rounds + 1):
            for stack, workload, contender in cells:
                number = len(measurements) + 1
                log = logs / f"r{round_}-{stack}-{workload.name}-{contender.name}.log"
                log.write_bytes(b"")
                baked = bakes[(stack, workload.answer, workload.static_strategy, workload.database)]
                database = postgres if workload.database else None
                found = measure(baked, stack, contender, workload, limits, load, log, round_, database)
                measurements.append(found)
                connections = "" if found.db_connections is None else f"  connections {found.db_connections}"
                print(
                    f"bench: [{number}/{total}] {stack} {workload.name:<17} {contender.title:<16}"
                    f" {found.requests_per_s:7.0f} req/s  p99 {found.p99_ms:6.0f} ms  errors {found.errors}"
                    f"  peak {found.peak_memory_mib or 0:4.0f} MiB{connections} {found.note}",
                    flush=True,
                )

    limits_per_workload = {w.name: w.physical_limit(limits.cpus, args.connections) for w in workloads}
    result = report.cells(measurements, limits_per_workload, memory_mib)
    checked = report.targets(result)
    titles = {name: contender.title for name, contender in CONTENDERS.items()}
    command = "bench/run" + "".join(f" {shlex.quote(arg)}" for arg in (sys.argv[1:] if argv is None else argv))
    about = machine(list(bakes.values()))
    heading = (
        f"{limits.cpus:g} CPU quota, {args.memory}, {args.connections} connections,"
        f" {args.duration:g} s per run x {args.rounds} rounds"
    )
    markdown = render(result, checked, titles, workloads, limits, args, command, about, heading)
    (args.out / "results.md").write_text(markdown)
    (args.out / "results.json").write_text(
        json.dumps({"command": command, "machine": about, "runs": [asdict(m) for m in measurements]}, indent=1)
    )
    report.chart(result, titles, args.out / "results.png", heading)
    print()
    print(report.summary_table(result, titles))
    print()
    for target in checked:
        print(f"bench: {'met   ' if target.met else 'MISSED'} {target.text}")
    minutes = (time.monotonic() - started) / 60
    print(f"bench: {total} runs in {minutes:.1f} min; report: {args.out / 'results.md'}, chart: results.png")
    return 0


def render(result, checked, titles, workloads, limits, args, command, about, heading) -> str:
    contenders = [CONTENDERS[name] for name in args.contenders]
    lines = [
        "# Benchmark results",
        "",
        f"`{command}`, {heading}.",
        "",
        *(f"- {line}" for line in about),
        "",
        "## Requests/s (share of the physical limit)",
        "",
        report.summary_table(result, titles),
        "",
        "The physical limit: connections / the work's own latency (Little's law), and CPU quota / CPU"
        " time per request, whichever is lower. Static files have none (their cost is the server's own):"
        " their ratio is to the best contender. (!) marks errors, OOM kills or a failed start.",
        "",
        "## Targets",
        "",
        *(f"- {'met' if target.met else '**missed**'}: {target.text}" for target in checked),
        "",
        "## Every figure",
        "",
        report.full_table(result, titles),
        "",
        "spread: (highest - lowest) / mean requests/s over the rounds. Peak memory: the cgroup's"
        " (page cache included), what the OOM killer compares with the limit. CPU ms/req: the cgroup's"
        " CPU time over the measured run / requests. processes: in the cgroup under load.",
        "",
        *report.database_section(result, titles),
        "## Contenders",
        "",
        *(
            f"- **{c.title}**: {c.source}. "
            + ", ".join(
                f"{stack.upper()} `{c.describe(stack, limits)}`"
                for stack in args.stacks
                if any(runs_on(stack, workload, c) for workload in workloads)
            )
            for c in contenders
            if any(runs_on(stack, workload, c) for stack in args.stacks for workload in workloads)
        ),
        "",
        "## Workloads",
        "",
        *(f"- **{w.title}**: {w.about}." for w in workloads),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
