"""What one benchmark run measures: its parts, each a list of runs (stack, workload, contender,
CPU quota, connections), in the order they are measured.

- servers: every server with a light framework and Django on each interface, the generated setup
  (and its variants, such as gunicorn's preload) on every workload, at each CPU quota;
- contenders: the generated setup on the stacks `auto` picks, against the lemonade stand, the
  articles' advice and popular templates, at the first CPU quota of 1 or more;
- growth: the stacks `auto` picks for I/O-bound work at growing numbers of connections.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyserve_template import compat
from pyserve_template.matrix import BENCH_FRAMEWORKS, BENCH_STACKS

from .contenders import CONTENDERS, Contender
from .workloads import WORKLOADS, Workload

PARTS = ("servers", "contenders", "growth")
# What the servers part asks of every stack: the floor, the three workloads a project answers, and
# static files from the app (what the server's own cost shows most).
SERVER_WORKLOADS = ("empty", "io", "cpu", "mixed", "static-whitenoise")
# The variants (gunicorn's preload, fewer granian workers) on the workloads where their memory and
# their throughput both show, at the main quota.
VARIANT_WORKLOADS = ("empty", "io", "mixed")
# Static files at the main quota only: the lower one adds nothing the others do not show.
MAIN_QUOTA_ONLY = ("static-whitenoise",)
CONTENDER_WORKLOADS = ("io", "cpu", "mixed", "static-whitenoise", "static-nginx", "static-app", "db")
GROWTH_WORKLOAD = "io"
GROWTH_CONNECTIONS = (16, 64, 256, 1024)


@dataclass(frozen=True)
class Run:
    part: str
    stack: compat.Stack
    workload: Workload
    contender: Contender
    cpus: float
    connections: int

    @property
    def key(self) -> tuple:
        """What makes two runs the same measurement, whichever part asked for it."""
        return (self.stack, self.workload.name, self.contender.name, self.cpus, self.connections)


@dataclass(frozen=True)
class Choice:
    """What the run is limited to (the command line's filters)."""

    parts: tuple[str, ...]
    interfaces: tuple[str, ...]
    servers: tuple[str, ...]
    frameworks: tuple[str, ...]
    workloads: tuple[str, ...]
    contenders: tuple[str, ...]
    cpus: tuple[float, ...]
    connections: int
    growth_connections: tuple[int, ...]


def auto_stack(interface: str, workload: Workload, auto: dict[tuple[str, str], str] | None = None) -> compat.Stack:
    """The light framework on the server `auto` picks for this workload: measured in this run when
    its servers part chose (auto), the committed choice otherwise."""
    server = (auto or {}).get((interface, workload.answer)) or compat.auto_server(interface, workload.answer)[0]
    return compat.Stack(BENCH_FRAMEWORKS[interface][0], interface, server)


def contender_runs_on(interface: str, workload: Workload, contender: Contender) -> bool:
    """Every contender where the app server's setup is what differs; the database's pool sizes on
    the database workload; the template alone elsewhere."""
    if interface not in contender.interfaces or contender.variant_of:
        return False
    if contender.database_only or workload.database:
        return workload.database and (contender.database_only or contender.name == "generated")
    return workload.every_contender or contender.name == "generated"


def main_quota(quotas: tuple[float, ...]) -> float:
    """The quota the contenders, the growth and the variants run at: the first of 1 CPU or more."""
    return next((cpus for cpus in quotas if cpus >= 1), quotas[-1])


def server_runs(choice: Choice) -> list[Run]:
    runs = []
    for stack in BENCH_STACKS:
        if not _chosen(choice, stack):
            continue
        for name in SERVER_WORKLOADS:
            if name not in choice.workloads:
                continue
            for contender in (CONTENDERS[name] for name in choice.contenders):
                variant = stack.server in contender.variant_of and stack.interface in contender.interfaces
                if contender.name != "generated" and not (variant and name in VARIANT_WORKLOADS):
                    continue
                every_quota = contender.name == "generated" and name not in MAIN_QUOTA_ONLY
                for cpus in choice.cpus if every_quota else (main_quota(choice.cpus),):
                    runs.append(Run("servers", stack, WORKLOADS[name], contender, cpus, choice.connections))
    return runs


def contender_runs(choice: Choice, auto: dict[tuple[str, str], str] | None) -> list[Run]:
    cpus = main_quota(choice.cpus)
    runs = []
    for interface in choice.interfaces:
        for name in CONTENDER_WORKLOADS:
            if name not in choice.workloads:
                continue
            workload = WORKLOADS[name]
            generated = auto_stack(interface, workload, auto)
            for contender in (CONTENDERS[name] for name in choice.contenders):
                if contender_runs_on(interface, workload, contender):
                    server = contender.server(interface, generated.server)
                    stack = compat.Stack(generated.framework, interface, server)
                    runs.append(Run("contenders", stack, workload, contender, cpus, choice.connections))
    return runs


def growth_runs(choice: Choice, auto: dict[tuple[str, str], str] | None) -> list[Run]:
    if GROWTH_WORKLOAD not in choice.workloads:
        return []
    cpus = main_quota(choice.cpus)
    workload = WORKLOADS[GROWTH_WORKLOAD]
    return [
        Run("growth", auto_stack(interface, workload, auto), workload, CONTENDERS["generated"], cpus, connections)
        for interface in choice.interfaces
        for connections in choice.growth_connections
    ]


def _chosen(choice: Choice, stack: compat.Stack) -> bool:
    return (
        stack.interface in choice.interfaces and stack.server in choice.servers and stack.framework in choice.frameworks
    )
