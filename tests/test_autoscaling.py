"""The autoscaler's signal under a real Prometheus: the exact query and target of the generated
ScaledObject, evaluated while an open-loop load ramps an I/O-bound stack (`make local CONFINE=1`: the
app server in its own 1-CPU cgroup, as in its container) from idle to twice its capacity and back.

The query must cross its target before the p99 latency degrades and fall back below it at idle; the
CPU, measured in the app's cgroup beside it, shows where a 70% CPU target would have scaled.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path

import pytest

from pyserve_template import confine, tuning
from pyserve_template.baking import free_port, project_venv

from .open_loop import Step, run_steps
from .prometheus import Autoscaler, pod_labels, running_prometheus
from .stack import CONFINED_TO, cgroup_reader, require_writable_cgroups, running_stack

pytestmark = pytest.mark.e2e

# A slow downstream (2 s a request): the threads run out long before the CPU does, at a rate the
# client keeps on its clock beside the stack on 2 CPUs.
WAIT_MS = 2000
# (share of the capacity offered, seconds): idle, up to twice the capacity, and back to idle; the
# queue the overload builds drains in the 0.5x step.
RAMP = [(0, 5), (0.25, 6), (0.5, 6), (0.8, 6), (1.0, 6), (1.5, 4), (2.0, 4), (1.0, 4), (0.5, 12), (0, 10)]
# A step's p99 half as long again as the lightest step's has degraded.
DEGRADED = 1.5


@dataclass
class Row:
    offered: float  # share of the capacity
    rate: float
    sent_rate: float
    answered: int
    failed: int
    p99_s: float | None
    query: float | None  # the median of the query's values over the step's second half
    cpu: float  # of the app's 1 CPU


def cpu_seconds(cgroup: confine.Confinement) -> float:
    seconds = cgroup.cpu_seconds()
    assert seconds is not None, f"no CPU accounting in {cgroup.directories}"
    return seconds


def step_query(samples: list[tuple[float, float]], step: Step) -> float | None:
    settled = [value for at, value in samples if step.began_wall + step.seconds / 2 <= at <= step.ended_wall]
    return statistics.median(settled) if settled else None


@pytest.fixture
def io_bound_project(fresh_bake) -> Path:
    return fresh_bake(use_kubernetes="yes", framework="flask", interface="wsgi", server="gunicorn", workload="io_bound")


def test_the_scaled_objects_query_crosses_its_target_before_the_p99_degrades(
    io_bound_project: Path, tmp_path: Path
) -> None:
    project, venv = io_bound_project, project_venv(io_bound_project)
    require_writable_cgroups(project, venv)
    autoscaler = Autoscaler.of(project)
    name, query, target = autoscaler.deployment, autoscaler.query, autoscaler.threshold
    cpu_target = autoscaler.cpu_percent / 100
    metrics_port = free_port()
    with running_stack(project, venv, {"METRICS_PORT": str(metrics_port)}, ("CONFINE=1",)) as stack:
        plan = stack.plan()
        capacity_rate = plan["workers"] * plan["threads"] / (WAIT_MS / 1000)
        [places] = CONFINED_TO.findall(stack.output())
        cgroup = cgroup_reader([Path(place) for place in places.split(", ")])
        with running_prometheus({f"127.0.0.1:{metrics_port}": pod_labels(name)}, tmp_path) as prometheus:
            steps = [Step(share * capacity_rate, seconds) for share, seconds in RAMP]
            cpu_at = [0.0] * (len(steps) + 1)
            run_steps(
                stack.http_port,
                f"/api/io?ms={WAIT_MS}",
                steps,
                lambda index: cpu_at.__setitem__(index, cpu_seconds(cgroup)),
            )
            samples = prometheus.query_range(query, steps[0].began_wall, steps[-1].ended_wall)
    rows = [
        Row(
            share,
            step.rate,
            step.sent_rate(),
            len(step.answered()),
            len(step.sent) - len(step.answered()),
            step.p99_s(),
            step_query(samples, step),
            (cpu_at[index + 1] - cpu_at[index]) / step.seconds / plan["cpus"],
        )
        for index, ((share, _), step) in enumerate(zip(RAMP, steps, strict=True))
    ]
    (tmp_path / "saturation.json").write_text(json.dumps([row.__dict__ for row in rows], indent=1))
    chart(rows, steps, samples, target, cpu_target, tmp_path / "autoscaling.png")
    print(table(rows, target, plan))
    print(f"saturation: the rows and the chart in {tmp_path} (docs/kubernetes.md shows them)")

    assert all(step.kept_clock() for step in steps), [(step.rate, step.sent_rate()) for step in steps]
    planned = tuning.SATURATING_IN_FLIGHT_PER_CPU[plan["workload"]] * plan["cpus"]
    assert target == int(tuning.AUTOSCALE_AT * planned)
    lightest = min(row.p99_s for row in rows if row.p99_s is not None)
    degraded = [index for index, row in enumerate(rows) if row.p99_s is not None and row.p99_s > DEGRADED * lightest]
    crossed = [index for index, row in enumerate(rows) if row.query is not None and row.query > target]
    busy_cpu = [index for index, row in enumerate(rows) if row.cpu >= cpu_target]
    assert degraded and crossed, "the ramp neither degraded the p99 nor crossed the target"
    assert crossed[0] < degraded[0], "the query crossed its target only once the p99 had degraded"
    assert rows[0].query is not None and rows[0].query < target, "above the target at idle"
    assert rows[-1].query is not None and rows[-1].query < target, "still above the target at idle, after the load"
    # A CPU target of 70% scales late (after the p99 degraded) or never for this workload.
    assert not busy_cpu or busy_cpu[0] > degraded[0], busy_cpu


def table(rows: list[Row], target: float, plan: dict) -> str:
    lines = [
        f"{plan['workers']} workers x {plan['threads']} threads, {WAIT_MS / 1000:g} s a request;"
        f" the query's target {target:g}",
        "| offered | rate/s | sent/s | answered | failed | p99 | requests in flight (query) | app CPU |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        p99 = "-" if row.p99_s is None else f"{row.p99_s:.2f} s"
        query = "-" if row.query is None else f"{row.query:g}"
        lines.append(
            f"| {row.offered:g}x | {row.rate:.0f} | {row.sent_rate:.0f} | {row.answered} | {row.failed} | {p99} |"
            f" {query} | {row.cpu:.0%} |"
        )
    return "\n".join(lines)


def chart(
    rows: list[Row], steps: list[Step], samples: list[tuple[float, float]], target: float, cpu_target: float, path: Path
) -> None:
    """The query against its target over the ramp, above the p99 and the app's CPU of each step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    start = steps[0].began_wall
    figure, (upper, lower) = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True)
    upper.step([at - start for at, _ in samples], [value for _, value in samples], where="post", label="the query")
    offered = [(step.began_wall - start, step.rate * WAIT_MS / 1000) for step in steps]
    upper.step(*zip(*offered, strict=True), where="post", linestyle=":", label=f"offered (rate x {WAIT_MS / 1000:g} s)")
    upper.axhline(target, color="tab:red", linestyle="--", label=f"target {target:g}")
    upper.set_ylabel("requests in flight")
    upper.legend(loc="upper left", fontsize=8)
    edges = [step.began_wall - start for step in steps] + [steps[-1].ended_wall - start]
    p99 = [row.p99_s or 0 for row in rows]
    lower.step(edges, [*p99, p99[-1]], where="post", color="tab:purple", label="p99 (s)")
    lower.set_ylabel("p99 (s)")
    lower.set_xlabel("seconds into the ramp")
    cpu = lower.twinx()
    used = [row.cpu * 100 for row in rows]
    cpu.step(edges, [*used, used[-1]], where="post", color="tab:green", label="app CPU (%)")
    cpu.axhline(cpu_target * 100, color="tab:green", linestyle="--", label=f"CPU target {cpu_target:.0%}")
    cpu.set_ylim(0, 100)
    cpu.set_ylabel("app CPU (%)")
    lower.legend(loc="upper left", fontsize=8)
    cpu.legend(loc="upper right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
