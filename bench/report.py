"""The benchmark's figures: rounds averaged per cell, ratios, the targets, a Markdown report and a chart."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from .harness import Measurement
from .workloads import DB_BUDGET, DB_SERVER_CONNECTIONS, WORKLOADS

# Two runs of the same cell differ by a few percent on a shared machine; below this a difference
# is not called a loss, whatever the rounds measured.
NOISE_FLOOR = 0.05
# The target: the generated stack reaches this share of Little's law on the I/O workload.
IO_TARGET = 0.8


@dataclass
class Cell:
    """One contender on one workload of one stack, at one quota and load, over all rounds."""

    stack: str  # the interface
    framework: str
    server: str
    workload: str
    contender: str
    cpus: float
    connections: int
    runs: list[Measurement]
    memory_limit_mib: float
    to_best: float | None = None
    floor_ms: float | None = None  # CPU ms per empty request on this stack and quota (the floor)

    @property
    def parts(self) -> set[str]:
        return {part for run in self.runs for part in run.parts.split(",") if part}

    @property
    def title(self) -> str:
        return f"{self.framework} on {self.server}"

    @property
    def physical_limit(self) -> float | None:
        return WORKLOADS[self.workload].physical_limit(self.cpus, self.connections)

    @property
    def stack_limit(self) -> float | None:
        return WORKLOADS[self.workload].stack_limit(self.cpus, self.connections, self.floor_ms)

    @property
    def to_stack_limit(self) -> float | None:
        limit = self.stack_limit
        return self.requests_per_s / limit if limit else None

    @property
    def requests_per_s(self) -> float:
        return statistics.fmean(run.requests_per_s for run in self.runs)

    @property
    def spread(self) -> float:
        """(highest - lowest) / mean of the rounds' requests/s: how far to trust a difference."""
        values = [run.requests_per_s for run in self.runs]
        mean = statistics.fmean(values)
        return (max(values) - min(values)) / mean if mean and len(values) > 1 else 0.0

    def mean(self, name: str) -> float | None:
        values = [getattr(run, name) for run in self.runs if getattr(run, name) is not None]
        return statistics.fmean(values) if values else None

    @property
    def errors(self) -> int:
        return sum(run.errors for run in self.runs)

    @property
    def peak_memory_mib(self) -> float | None:
        return max((run.peak_memory_mib for run in self.runs if run.peak_memory_mib is not None), default=None)

    @property
    def oom_kills(self) -> int:
        return sum(run.oom_kills for run in self.runs)

    @property
    def processes(self) -> int:
        return max(run.workers for run in self.runs)

    @property
    def notes(self) -> str:
        return "; ".join(sorted({run.note for run in self.runs if run.note}))

    @property
    def clean(self) -> bool:
        return not self.errors and not self.oom_kills and not self.notes

    @property
    def db_connections(self) -> int | None:
        return max((run.db_connections for run in self.runs if run.db_connections is not None), default=None)

    @property
    def db_refused(self) -> int:
        return sum(run.db_refused or 0 for run in self.runs)

    @property
    def to_limit(self) -> float | None:
        return self.requests_per_s / self.physical_limit if self.physical_limit else None


def cells(measurements: list[Measurement], memory_mib: float) -> list[Cell]:
    """Group the rounds per cell, in the order first measured; ratio each to the best contender on
    its stack and workload, and give it its stack's floor (the empty workload's CPU per request)."""
    grouped: dict[tuple, Cell] = {}
    for run in measurements:
        key = (run.stack, run.framework, run.server, run.workload, run.contender, run.cpus, run.connections)
        if key not in grouped:
            grouped[key] = Cell(*key, [], memory_mib)
        grouped[key].runs.append(run)
    result = list(grouped.values())
    floors = {
        (c.stack, c.framework, c.server, c.cpus): c.mean("cpu_ms_per_request")
        for c in result
        if WORKLOADS[c.workload].floor and c.contender == "generated" and c.clean
    }
    for cell in result:
        # Within its own part: the setups on the `auto` stacks against each other, or the servers.
        part = "contenders" if "contenders" in cell.parts else "servers"
        rivals = [other for other in result if _same_place(other, cell) and part in other.parts]
        # The best clean one: a contender answering 502s fast is not the best.
        best = max((other.requests_per_s for other in rivals if other.clean), default=0.0)
        cell.to_best = cell.requests_per_s / best if best else None
        cell.floor_ms = floors.get((cell.stack, cell.framework, cell.server, cell.cpus))
    return result


def _same_place(one: Cell, other: Cell) -> bool:
    """The same framework and workload under the same quota and load: whichever server and setup."""
    return (one.stack, one.framework, one.workload, one.cpus, one.connections) == (
        other.stack, other.framework, other.workload, other.cpus, other.connections
    )  # fmt: skip


@dataclass(frozen=True)
class Target:
    text: str
    met: bool


# The targets (1 CPU, 64 connections, every auto choice): share of the physical limit per
# workload and interface, and of the stack's limit; static files from the app against the best contender.
PHYSICAL_TARGETS = {("io", "wsgi"): 0.95, ("io", "asgi"): 0.95, ("cpu", "wsgi"): 0.95, ("cpu", "asgi"): 0.95,
                    ("mixed", "wsgi"): 0.80, ("mixed", "asgi"): 0.88}  # fmt: skip
STACK_TARGET = 0.95
STATIC_TARGET = 0.9
# Which answer each measured workload stands for, to find the server `auto` picks for it.
ANSWER_OF = {"io": "io_bound", "mixed": "mixed", "cpu": "cpu_bound", "static-whitenoise": "io_bound"}


def targets(result: list[Cell], auto: dict[tuple[str, str], str], cpus: float, connections: int) -> list[Target]:
    """What the generated configuration must do (issues 6 and 18), checked against this run: on the
    servers `auto` picks (`auto`: (interface, answer) -> server), at this quota and load."""
    found = []
    for cell in result:
        if cell.contender != "generated" or cell.connections != connections or cell.cpus != cpus:
            continue
        answer = ANSWER_OF.get(cell.workload)
        if (answer and auto.get((cell.stack, answer)) != cell.server) and "contenders" not in cell.parts:
            continue
        where = f"{cell.stack} {cell.workload} ({cell.title})"
        physical = PHYSICAL_TARGETS.get((cell.workload, cell.stack))
        if physical is not None and cell.to_limit is not None:
            why = ""
            if cell.to_limit < physical and (cell.to_stack_limit or 0) >= STACK_TARGET:
                why = ": the server's and framework's own CPU per request (the floor), not the tuning"
            found.append(Target(
                f"{where}: {cell.to_limit:.2f} of the physical limit {cell.physical_limit:.0f} req/s"
                f" (target >= {physical}){_short(cell.to_limit, physical)}{why}",
                cell.to_limit >= physical and cell.clean,
            ))  # fmt: skip
            if cell.to_stack_limit is not None:
                found.append(Target(
                    f"{where}: {cell.to_stack_limit:.2f} of the stack's limit {cell.stack_limit:.0f} req/s"
                    f" (target >= {STACK_TARGET}; floor {cell.floor_ms:.2f} ms of CPU a request)"
                    f"{_short(cell.to_stack_limit, STACK_TARGET)}",
                    cell.to_stack_limit >= STACK_TARGET and cell.clean,
                ))  # fmt: skip
        if cell.workload == "static-whitenoise" and "contenders" in cell.parts and cell.to_best is not None:
            found.append(Target(
                f"{where}: {cell.to_best:.2f} of the best contender (target >= {STATIC_TARGET})"
                f"{_short(cell.to_best, STATIC_TARGET)}",
                cell.to_best >= STATIC_TARGET and cell.clean,
            ))  # fmt: skip
        articles = next((c for c in result if _same_place(c, cell) and c.contender == "articles"), None)
        if articles is not None:
            noise = max(NOISE_FLOOR, cell.spread, articles.spread)
            ratio = cell.requests_per_s / articles.requests_per_s if articles.requests_per_s else float("inf")
            found.append(
                Target(
                    f"{where}: {ratio:.2f} x the articles' advice (a loss beyond noise is < {1 - noise:.2f})",
                    ratio >= 1 - noise,
                )
            )
        if cell.db_connections is not None:
            found.append(
                Target(
                    f"{where}: at most {cell.db_connections} database connections, the budget {DB_BUDGET}",
                    cell.db_connections <= DB_BUDGET and cell.clean,
                )
            )
        peak = cell.peak_memory_mib
        found.append(
            Target(
                f"{where}: peak memory {_mib(peak)} of {cell.memory_limit_mib:.0f} MiB, {cell.oom_kills} OOM kills",
                peak is not None and peak < cell.memory_limit_mib and not cell.oom_kills,
            )
        )
    return found


def _short(value: float, target: float) -> str:
    return "" if value >= target else f", short by {target - value:.2f}"


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} MiB"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _row(values: list[object]) -> str:
    return "| " + " | ".join(str(value) for value in values) + " |"


def summary_table(result: list[Cell], titles: dict[str, str]) -> str:
    """Requests/s per contender and workload, with the ratio to the physical limit (or to the best)."""
    workloads = list(dict.fromkeys(cell.workload for cell in result))
    lines = [
        _row(["stack", "contender", *(WORKLOADS[name].title for name in workloads)]),
        _row(["---"] * (2 + len(workloads))),
    ]
    for stack, contender in dict.fromkeys((cell.stack, cell.contender) for cell in result):
        row: list[object] = [stack.upper(), titles[contender]]
        for workload in workloads:
            cell = next((c for c in result if (c.stack, c.workload, c.contender) == (stack, workload, contender)), None)
            if cell is None:
                row.append("")
                continue
            ratio = f"{cell.to_limit:.2f} of limit" if cell.to_limit is not None else f"{_ratio(cell.to_best)} of best"
            flag = "" if cell.clean else " (!)"
            row.append(f"{cell.requests_per_s:.0f} ({ratio}){flag}")
        lines.append(_row(row))
    return "\n".join(lines)


def servers_table(result: list[Cell], cpus: float) -> str:
    """The servers part at one quota: requests/s per stack and workload, with the ratios to the
    physical limit and to the stack's limit, and the floor (CPU ms an empty request costs)."""
    shown = [c for c in result if "servers" in c.parts and c.contender == "generated" and c.cpus == cpus]
    workloads = [name for name in dict.fromkeys(c.workload for c in shown) if not WORKLOADS[name].floor]
    lines = [
        _row(["stack", "floor: CPU ms/req", *(WORKLOADS[name].title for name in workloads)]),
        _row(["---"] * (2 + len(workloads))),
    ]
    for stack, framework, server in dict.fromkeys((c.stack, c.framework, c.server) for c in shown):
        mine = {c.workload: c for c in shown if (c.stack, c.framework, c.server) == (stack, framework, server)}
        floor = next((c.floor_ms for c in mine.values() if c.floor_ms is not None), None)
        row: list[object] = [f"{stack.upper()} {framework} on {server}", "-" if floor is None else f"{floor:.2f}"]
        for name in workloads:
            cell = mine.get(name)
            if cell is None:
                row.append("")
                continue
            rivals = [c for c in shown if (c.stack, c.framework, c.workload) == (stack, framework, name) and c.clean]
            best = max((c.requests_per_s for c in rivals), default=0.0)
            if cell.physical_limit:
                ratio = f"{_ratio(cell.to_limit)} / {_ratio(cell.to_stack_limit)}"
            else:
                ratio = f"{cell.requests_per_s / best:.2f} of best" if best else "-"
            row.append(
                f"{cell.requests_per_s:.0f} ({ratio}), p99 {cell.mean('p99_ms'):.0f}{'' if cell.clean else ' (!)'}"
            )
        lines.append(_row(row))
    return "\n".join(lines)


def variants_table(result: list[Cell], titles: dict[str, str]) -> str:
    """Each variant beside the generated setup on the same stack: throughput and peak memory."""
    variants = [c for c in result if c.contender != "generated" and "servers" in c.parts]
    if not variants:
        return ""
    lines = [
        _row(["stack", "workload", "CPU", "setup", "req/s", "p99 ms", "peak memory", "processes"]),
        _row(["---"] * 8),
    ]
    for variant in variants:
        base = next(
            (
                c
                for c in result
                if _same_place(c, variant) and c.server == variant.server and c.contender == "generated"
            ),
            None,
        )
        for cell in (base, variant):
            if cell is not None:
                lines.append(_row([
                    f"{cell.stack.upper()} {cell.title}", WORKLOADS[cell.workload].title, f"{cell.cpus:g}",
                    titles[cell.contender], f"{cell.requests_per_s:.0f}", f"{cell.mean('p99_ms'):.0f}",
                    _mib(cell.peak_memory_mib), cell.processes,
                ]))  # fmt: skip
    return "\n".join(lines)


def growth_cells(result: list[Cell]) -> list[Cell]:
    return sorted((c for c in result if "growth" in c.parts), key=lambda c: (c.stack, c.connections))


def growth_table(result: list[Cell]) -> str:
    """The auto choice on I/O at growing connections: where throughput stops following Little's law."""
    lines = [
        _row(["stack", "connections", "req/s", "Little's law", "x limit", "p99 ms", "peak memory", "CPU ms/req",
              "CPU used"]),
        _row(["---"] * 9),
    ]  # fmt: skip
    for cell in growth_cells(result):
        cpu = cell.mean("cpu_ms_per_request")
        used = "-" if cpu is None else f"{cpu * cell.requests_per_s / 1000 / cell.cpus:.0%} of the quota"
        lines.append(_row([
            f"{cell.stack.upper()} {cell.title}", cell.connections, f"{cell.requests_per_s:.0f}",
            f"{cell.physical_limit:.0f}", _ratio(cell.to_limit), f"{cell.mean('p99_ms'):.0f}",
            _mib(cell.peak_memory_mib), "-" if cpu is None else f"{cpu:.2f}", used,
        ]))  # fmt: skip
    return "\n".join(lines)


def growth_findings(result: list[Cell], follows: float = 0.9) -> list[str]:
    """Per stack, the first load at which throughput falls below `follows` of Little's law, and why."""
    found = []
    for stack in dict.fromkeys((c.stack, c.title) for c in growth_cells(result)):
        mine = [c for c in growth_cells(result) if (c.stack, c.title) == stack]
        past = next((c for c in mine if (c.to_limit or 0) < follows), None)
        if past is None:
            top = mine[-1].connections if mine else 0
            found.append(f"{stack[0].upper()} {stack[1]}: follows Little's law (>= {follows}) up to {top} connections")
            continue
        cpu = past.mean("cpu_ms_per_request")
        busy = cpu is not None and cpu * past.requests_per_s / 1000 >= 0.9 * past.cpus
        if past.oom_kills or (past.peak_memory_mib or 0) > 0.9 * past.memory_limit_mib:
            why = f"memory: peak {_mib(past.peak_memory_mib)} of {past.memory_limit_mib:.0f} MiB"
        elif busy:
            why = (
                f"the CPU quota: {cpu:.2f} ms of CPU a request x {past.requests_per_s:.0f} req/s"
                f" fills {past.cpus:g} CPU"
            )
        else:
            why = "not the quota nor memory: a limit of the server's (requests in flight it admits) or of the load"
        found.append(
            f"{stack[0].upper()} {stack[1]}: below {follows} of Little's law from {past.connections} connections"
            f" ({past.requests_per_s:.0f} of {past.physical_limit:.0f} req/s, p99 {past.mean('p99_ms'):.0f} ms): {why}"
        )
    return found


def growth_chart(result: list[Cell], path: Path, heading: str) -> None:
    """Requests/s and p99 against connections, one panel per stack, Little's law dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = growth_cells(result)
    stacks = list(dict.fromkeys((c.stack, c.title) for c in shown))
    if not stacks:
        return
    figure, axes = plt.subplots(1, len(stacks), figsize=(5 * len(stacks), 3.6), squeeze=False)
    for axis, stack in zip(axes[0], stacks, strict=True):
        mine = [c for c in shown if (c.stack, c.title) == stack]
        x = [c.connections for c in mine]
        axis.plot(x, [c.requests_per_s for c in mine], marker="o", color="#1f5f8b", label="requests/s")
        axis.plot(x, [c.physical_limit for c in mine], linestyle="--", color="#c0392b", label="Little's law")
        axis.set_xscale("log", base=2)
        axis.set_xlabel("connections")
        axis.set_ylabel("requests/s")
        axis.set_title(f"{stack[0].upper()}: {stack[1]}, I/O (100 ms)", fontsize=9)
        tail = axis.twinx()
        tail.plot(x, [c.mean("p99_ms") for c in mine], marker="s", color="#7f8c8d", label="p99 ms")
        tail.set_ylabel("p99 ms")
        axis.legend(loc="upper left", fontsize=7)
        tail.legend(loc="lower right", fontsize=7)
    figure.suptitle(heading, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def full_table(result: list[Cell], titles: dict[str, str]) -> str:
    header = [
        "stack", "workload", "contender", "CPU", "conns", "req/s", "spread", "x best", "x limit", "x stack limit",
        "p50 ms", "p95 ms", "p99 ms", "errors", "peak memory", "OOM", "CPU ms/req", "processes",
    ]  # fmt: skip
    lines = [_row(header), _row(["---"] * len(header))]
    for cell in result:
        cpu = cell.mean("cpu_ms_per_request")
        lines.append(
            _row([
                f"{cell.stack.upper()} {cell.title}", WORKLOADS[cell.workload].title, titles[cell.contender],
                f"{cell.cpus:g}", cell.connections, f"{cell.requests_per_s:.0f}", f"{cell.spread:.0%}",
                _ratio(cell.to_best), _ratio(cell.to_limit), _ratio(cell.to_stack_limit),
                f"{cell.mean('p50_ms'):.0f}", f"{cell.mean('p95_ms'):.0f}", f"{cell.mean('p99_ms'):.0f}",
                cell.errors, _mib(cell.peak_memory_mib), cell.oom_kills, "-" if cpu is None else f"{cpu:.2f}",
                cell.processes,
            ])
        )  # fmt: skip
    return "\n".join(lines)


def chart(result: list[Cell], path: Path, heading: str, cpus: float) -> None:
    """Requests/s per stack, one panel per interface and workload of the servers part at `cpus`;
    the dashed line is the physical limit."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [c for c in result if "servers" in c.parts and c.contender == "generated" and c.cpus == cpus]
    stacks = list(dict.fromkeys(cell.stack for cell in shown))
    workloads = list(dict.fromkeys(cell.workload for cell in shown))
    if not shown:
        return
    palette = {"gunicorn": "#1f5f8b", "uvicorn": "#27ae60", "granian": "#d35400", "hypercorn": "#8e44ad"}
    figure, axes = plt.subplots(
        len(stacks), len(workloads), figsize=(3.2 * len(workloads), 3.6 * len(stacks)), squeeze=False
    )
    for row, stack in enumerate(stacks):
        for column, workload in enumerate(workloads):
            axis = axes[row][column]
            mine = [cell for cell in shown if (cell.stack, cell.workload) == (stack, workload)]
            colors = [palette.get(cell.server, "#9bbcd6") for cell in mine]
            axis.bar([cell.title for cell in mine], [cell.requests_per_s for cell in mine], color=colors)
            limit = mine[0].physical_limit if mine else None
            if limit:
                axis.axhline(limit, color="#c0392b", linestyle="--", linewidth=1)
            axis.set_title(f"{stack.upper()}: {WORKLOADS[workload].title}", fontsize=9)
            axis.tick_params(axis="x", labelrotation=60, labelsize=7)
            axis.tick_params(axis="y", labelsize=7)
            if column == 0:
                axis.set_ylabel("requests/s")
    figure.suptitle(heading, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def database_section(result: list[Cell], titles: dict[str, str]) -> list[str]:
    """The database workload's cells with the connections each took: the lines of a Markdown section."""
    found = [cell for cell in result if cell.db_connections is not None]
    if not found:
        return []
    rows = [
        f"| {cell.stack.upper()} | {titles[cell.contender]} | {cell.requests_per_s:.0f} ({cell.to_limit:.2f} of limit)"
        f" | {cell.mean('p99_ms'):.0f} | {cell.errors} | {cell.db_connections} | {cell.db_refused} |"
        for cell in found
    ]
    return [
        "## Database",
        "",
        f"PostgreSQL with {DB_SERVER_CONNECTIONS} connections, of which the service may hold {DB_BUDGET}: the limit"
        f" is {DB_BUDGET} queries at once / their {WORKLOADS['db'].io_ms():.0f} ms. Connections: the app's most"
        " at once in pg_stat_activity (sampled every 20 ms); refused: attempts PostgreSQL turned away for want"
        " of a slot, from its log.",
        "",
        "| stack | contender | req/s | p99 ms | errors | most connections | refused |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
    ]
