"""The benchmark: every server measured, `auto` chosen by measurement, and the generated stack
against the lemonade stand, the articles' advice and popular templates.

    bench/run                                  # everything, as the README's figures were made
    bench/run --quick                          # a minute's check that every part runs
    bench/run --parts servers --servers gunicorn,granian --frameworks flask --cpus 1

It bakes projects with the template's default answers and measures them side by side in one run
(bench/plan.py has the parts): every app server in a fresh cgroup with the container's CPU quota and
memory limit, behind the project's nginx, loaded by wrk on 127.0.0.1. Rounds run one after the
other over every cell, so that a machine growing slower or faster during the run moves all alike.

Writes bench/results/results.md (the tables), results.png and growth.png (the charts),
results.json (every run) and auto.json (the servers `auto` picks, which the template reads).
It needs root (for the cgroups), nginx and wrk: bench/run installs the last two.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from pyserve_template import compat, records, values
from pyserve_template.baking import dependencies
from pyserve_template.postgres import running_postgres

from . import auto, report
from .contenders import CONTENDERS, default_limits
from .harness import Bake, Load, Measurement, bake, measure
from .page import write_report
from .plan import GROWTH_CONNECTIONS, PARTS, Choice, Run, contender_runs, growth_runs, server_runs
from .workloads import DB_SERVER_CONNECTIONS, WORKLOADS

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


def numbers(parse_one: Callable[[str], float], name: str) -> Callable[[str], tuple]:
    def parse(text: str) -> tuple:
        try:
            values = tuple(parse_one(part.strip()) for part in text.split(",") if part.strip())
        except (ValueError, values.TuningError) as error:
            raise argparse.ArgumentTypeError(f"{name}: {text!r}: {error}") from None
        if not values or any(value <= 0 for value in values):
            raise argparse.ArgumentTypeError(f"{name}: {text!r}: give numbers > 0, comma-separated")
        return values

    return parse


# --quick: every part, one stack a part and a second a run: the test suite's check that it all runs.
QUICK = {
    "interfaces": ["wsgi"], "servers": ["gunicorn"], "frameworks": ["flask"], "workloads": ["empty", "io"],
    "contenders": ["generated", "bare"], "cpus": (1.0,), "growth_connections": (16, 64), "rounds": 1,
    "duration": 1.0, "warm_up": 0.0,
}  # fmt: skip


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", type=names(dict.fromkeys(PARTS)), default=list(PARTS), help=", ".join(PARTS))
    parser.add_argument(
        "--stacks", dest="interfaces", type=names(dict.fromkeys(compat.INTERFACES)), default=["wsgi", "asgi"],
        help="interfaces: wsgi, asgi (default both)",
    )  # fmt: skip
    parser.add_argument("--servers", type=names(records.SERVERS), default=list(records.SERVERS))
    parser.add_argument("--frameworks", type=names(records.FRAMEWORKS), default=list(records.FRAMEWORKS))
    parser.add_argument("--workloads", type=names(WORKLOADS), default=list(WORKLOADS), help=", ".join(WORKLOADS))
    parser.add_argument("--contenders", type=names(CONTENDERS), default=list(CONTENDERS), help=", ".join(CONTENDERS))
    parser.add_argument(
        "--cpus", type=numbers(lambda text: values.parse_cpus(text, "--cpus"), "--cpus"), default=(0.5, 1.0),
        help="the CPU quotas the servers part runs at (default 0.5,1); the other parts use the first >= 1",
    )  # fmt: skip
    parser.add_argument("--memory", default="512MiB", help="the container's memory limit (default 512MiB)")
    parser.add_argument(
        "--host-cpus", type=int, help="what cpu_count() returns, for the cpu_count contender (default: this machine)"
    )
    parser.add_argument("--connections", type=int, default=64, help="wrk's connections, all asking back to back")
    parser.add_argument(
        "--growth-connections", type=numbers(int, "--growth-connections"), default=GROWTH_CONNECTIONS,
        help=f"the growth part's loads (default {','.join(map(str, GROWTH_CONNECTIONS))})",
    )  # fmt: skip
    parser.add_argument("--duration", type=float, default=5, help="seconds measured per run")
    parser.add_argument("--warm-up", type=float, default=1, help="seconds of load before each measured run")
    parser.add_argument("--rounds", type=int, default=1, help="passes over every cell (their spread is the noise)")
    parser.add_argument("--quick", action="store_true", help="one stack, two workloads, a second a run")
    parser.add_argument(
        "--report-only", action="store_true", help="write the report again from --out's results.json, measuring nothing"
    )
    parser.add_argument("--out", type=Path, default=HERE / "results", help="where the report goes")
    parser.add_argument("--workdir", type=Path, default=TEMPLATE_ROOT / ".cache" / "bench", help="the baked projects")
    args = parser.parse_args(argv)
    if args.quick:
        for name, value in QUICK.items():
            setattr(args, name, value)
    try:
        values.parse_memory(args.memory, "--memory")
    except values.TuningError as error:
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
            for line in dependencies(found.project)
            if re.match(r"^[\w.\[\]-]+==", line.strip())
        }
    )
    return [
        f"{model}, {os.cpu_count()} cores, Linux {platform.release()}, Python {platform.python_version()}",
        f"{nginx.removeprefix('nginx version: ')}, {wrk.split(' [')[0]}; {', '.join(pins)}",
    ]


def measure_all(runs: list[Run], args: argparse.Namespace, bakes: dict, logs: Path, done: list[Measurement],
                total: int) -> list[Measurement]:  # fmt: skip
    """Every run, round after round; a run two parts asked for is measured once."""
    unique: dict[tuple, list[str]] = {}
    firsts: dict[tuple, Run] = {}
    for run in runs:
        unique.setdefault(run.key, []).append(run.part)
        firsts.setdefault(run.key, run)
    measured = []
    with contextlib.ExitStack() as running:
        postgres = None
        if any(run.workload.database for run in firsts.values()):
            postgres = running.enter_context(running_postgres(DB_SERVER_CONNECTIONS))
        for round_ in range(1, args.rounds + 1):
            for key, run in firsts.items():
                limits = default_limits(run.cpus, args.memory, args.host_cpus)
                where = f"{run.stack.id}-{run.workload.name}-{run.contender.name}-{run.cpus:g}cpu-{run.connections}c"
                log = logs / f"r{round_}-{where}.log"
                log.write_bytes(b"")
                baked = bakes[bake_key(run)]
                database = postgres if run.workload.database else None
                load = Load(run.connections, args.duration, args.warm_up)
                found = measure(baked, run.stack, run.contender, run.workload, limits, load, log, round_, database)
                found.parts = ",".join(dict.fromkeys(unique[key]))
                measured.append(found)
                connections = "" if found.db_connections is None else f"  connections {found.db_connections}"
                print(
                    f"bench: [{len(done) + len(measured)}/{total}] {run.stack.id:<22} {run.workload.name:<17}"
                    f" {run.contender.title:<19} {run.cpus:g} CPU {run.connections:>4} c"
                    f" {found.requests_per_s:7.0f} req/s  p99 {found.p99_ms:6.0f} ms  errors {found.errors}"
                    f"  peak {found.peak_memory_mib or 0:4.0f} MiB{connections} {found.note}",
                    flush=True,
                )
    return measured


def bake_key(run: Run) -> tuple:
    return (run.stack, run.workload.answer, run.workload.static_strategy, run.workload.database)


def bake_all(runs: list[Run], args: argparse.Namespace, bakes: dict) -> None:
    for run in runs:
        key = bake_key(run)
        if key not in bakes:
            print(f"bench: baking {run.stack.id}, {run.workload.answer}, static files from {key[2]} ...", flush=True)
            limits = default_limits(run.cpus, args.memory, args.host_cpus)
            bakes[key] = bake(args.workdir, run.stack, limits=limits, workload=run.workload)


def main(argv: list[str] | None = None) -> int:
    # SIGTERM unwinds like Ctrl-C: every app server, nginx and cgroup started is stopped on the way out.
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(128 + number))
    args = arguments(argv)
    if args.report_only:
        return report_again(args.out)
    memory_mib = values.parse_memory(args.memory) / values.MIB
    args.out.mkdir(parents=True, exist_ok=True)
    logs = args.workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    command = "bench/run" + "".join(f" {shlex.quote(arg)}" for arg in (sys.argv[1:] if argv is None else argv))
    run_name = f"`{command}`, {datetime.date.today().isoformat()}"
    choice = Choice(
        tuple(args.parts), tuple(args.interfaces), tuple(args.servers), tuple(args.frameworks),
        tuple(args.workloads), tuple(args.contenders), tuple(args.cpus), args.connections,
        tuple(args.growth_connections),
    )  # fmt: skip
    first = server_runs(choice) if "servers" in choice.parts else []
    # Until the servers part has measured, the other parts' count is a guess: the stacks may change.
    later = [*(contender_runs(choice, None) if "contenders" in choice.parts else []),
             *(growth_runs(choice, None) if "growth" in choice.parts else [])]  # fmt: skip
    total = (len({run.key for run in first}) + len({run.key for run in later})) * args.rounds
    print(
        f"bench: about {total} runs of {args.warm_up:g} + {args.duration:g} s, each app server confined to"
        f" {'/'.join(f'{cpus:g}' for cpus in args.cpus)} CPU and {args.memory}",
        flush=True,
    )
    started = time.monotonic()
    bakes: dict[tuple, Bake] = {}
    bake_all(first, args, bakes)
    measurements = measure_all(first, args, bakes, logs, [], total)
    committed = {(i, w): compat.auto_server(i, w)[0] for i in compat.INTERFACES for w in compat.WORKLOADS}
    decisions = auto.choose(report.cells(measurements, memory_mib), run_name, committed)
    chosen = {(d.interface, d.workload): d.server for d in decisions}
    later = [*(contender_runs(choice, chosen) if "contenders" in choice.parts else []),
             *(growth_runs(choice, chosen) if "growth" in choice.parts else [])]  # fmt: skip
    # What the servers part measured already is not measured again; the later parts share it.
    earlier = {(m.stack, m.framework, m.server, m.workload, m.contender, m.cpus, m.connections): m
               for m in measurements}  # fmt: skip
    fresh = []
    for run in later:
        again = earlier.get((run.stack.interface, run.stack.framework, run.stack.server, run.workload.name,
                             run.contender.name, run.cpus, run.connections))  # fmt: skip
        if again is None:
            fresh.append(run)
        else:
            again.parts = ",".join(dict.fromkeys([*again.parts.split(","), run.part]))
    bake_all(fresh, args, bakes)
    measurements += measure_all(fresh, args, bakes, logs, measurements, total)

    about = machine(list(bakes.values()))
    write_report(args, measurements, decisions, command, about, run_name)
    minutes = (time.monotonic() - started) / 60
    print(f"bench: {len(measurements)} runs in {minutes:.1f} min; report: {args.out / 'results.md'}")
    return 0


def report_again(out: Path) -> int:
    """The report from out/results.json as the run that measured it would write it now, with the
    choices made against what `auto` picked before that run (out/auto.json): no measuring."""
    data = json.loads((out / "results.json").read_text())
    committed = json.loads((out / "auto.json").read_text())
    args = arguments(shlex.split(data["command"])[1:])
    args.out = out
    measurements = [Measurement(**found) for found in data["runs"]]
    incumbents = {(c["interface"], c["workload"]): c["incumbent"] for c in committed["choices"]}
    memory_mib = values.parse_memory(args.memory) / values.MIB
    decisions = auto.choose(report.cells(measurements, memory_mib), committed["run"], incumbents)
    write_report(args, measurements, decisions, data["command"], data["machine"], committed["run"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
