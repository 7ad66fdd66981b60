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
    """One contender on one workload of one stack, over all rounds."""

    stack: str
    workload: str
    contender: str
    runs: list[Measurement]
    physical_limit: float | None
    memory_limit_mib: float
    to_best: float | None = None

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


def cells(measurements: list[Measurement], physical_limits: dict[str, float | None], memory_mib: float) -> list[Cell]:
    """Group the rounds per cell, in the order first measured; ratio each to its workload's best."""
    grouped: dict[tuple[str, str, str], Cell] = {}
    for run in measurements:
        key = (run.stack, run.workload, run.contender)
        if key not in grouped:
            grouped[key] = Cell(*key, [], physical_limits[run.workload], memory_mib)
        grouped[key].runs.append(run)
    result = list(grouped.values())
    for cell in result:
        rivals = [other for other in result if (other.stack, other.workload) == (cell.stack, cell.workload)]
        # The best clean one: a contender answering 502s fast is not the best.
        best = max((other.requests_per_s for other in rivals if other.clean), default=0.0)
        cell.to_best = cell.requests_per_s / best if best else None
    return result


@dataclass(frozen=True)
class Target:
    text: str
    met: bool


def targets(result: list[Cell]) -> list[Target]:
    """What the generated configuration must do (issue 6), checked against this run."""
    found = []
    by_key = {(cell.stack, cell.workload, cell.contender): cell for cell in result}
    for cell in result:
        if cell.contender != "generated":
            continue
        where = f"{cell.stack} {cell.workload}"
        if cell.workload == "io" and cell.to_limit is not None:
            found.append(
                Target(
                    f"{where}: {cell.to_limit:.2f} of Little's law (target >= {IO_TARGET})",
                    cell.to_limit >= IO_TARGET and cell.clean,
                )
            )
        articles = by_key.get((cell.stack, cell.workload, "articles"))
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


def full_table(result: list[Cell], titles: dict[str, str]) -> str:
    header = [
        "stack", "workload", "contender", "req/s", "spread", "x best", "x limit", "p50 ms", "p95 ms", "p99 ms",
        "errors", "peak memory", "OOM", "CPU ms/req", "processes",
    ]  # fmt: skip
    lines = [_row(header), _row(["---"] * len(header))]
    for cell in result:
        cpu = cell.mean("cpu_ms_per_request")
        lines.append(
            _row([
                cell.stack.upper(), WORKLOADS[cell.workload].title, titles[cell.contender],
                f"{cell.requests_per_s:.0f}", f"{cell.spread:.0%}", _ratio(cell.to_best), _ratio(cell.to_limit),
                f"{cell.mean('p50_ms'):.0f}", f"{cell.mean('p95_ms'):.0f}", f"{cell.mean('p99_ms'):.0f}",
                cell.errors, _mib(cell.peak_memory_mib), cell.oom_kills, "-" if cpu is None else f"{cpu:.2f}",
                cell.processes,
            ])
        )  # fmt: skip
    return "\n".join(lines)


def chart(result: list[Cell], titles: dict[str, str], path: Path, heading: str) -> None:
    """Requests/s per contender, one panel per stack and workload; the dashed line is the physical limit."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stacks = list(dict.fromkeys(cell.stack for cell in result))
    workloads = list(dict.fromkeys(cell.workload for cell in result))
    figure, axes = plt.subplots(
        len(stacks), len(workloads), figsize=(3.2 * len(workloads), 3.4 * len(stacks)), squeeze=False
    )
    for row, stack in enumerate(stacks):
        for column, workload in enumerate(workloads):
            axis = axes[row][column]
            shown = [cell for cell in result if (cell.stack, cell.workload) == (stack, workload)]
            colors = ["#1f5f8b" if cell.contender == "generated" else "#9bbcd6" for cell in shown]
            axis.bar([titles[cell.contender] for cell in shown], [cell.requests_per_s for cell in shown], color=colors)
            limit = shown[0].physical_limit if shown else None
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
