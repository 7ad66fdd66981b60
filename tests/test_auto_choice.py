"""`server=auto` is chosen by measurement (bench/auto.py), and the template reads the committed choice.

The rule, table-driven on made-up figures; then the committed choice against the committed run:
bench/results/auto.json must be what bench/auto.py makes of bench/results/results.json, so that the
reason a user reads at generation cites the figures of the run it came from.
"""

from __future__ import annotations

import json

import pytest

from bench import auto, report
from bench.harness import Measurement
from pyserve_template import answers, compat

from .conftest import TEMPLATE_ROOT, context

RESULTS = TEMPLATE_ROOT / "bench" / "results"
RUN = "`bench/run`, a test"


def measured(server: str, requests_per_s: float, p99_ms: float = 120, *, framework: str = "flask",
             errors: int = 0) -> Measurement:  # fmt: skip
    return Measurement(
        stack="wsgi", framework=framework, server=server, workload="io", contender="generated", cpus=1.0,
        connections=64, round=1, requests_per_s=requests_per_s, p50_ms=p99_ms / 2, p95_ms=p99_ms, p99_ms=p99_ms,
        errors=errors, requests=int(requests_per_s * 5), peak_memory_mib=100, oom_kills=0, cpu_ms_per_request=1.0,
        workers=4, parts="servers",
    )  # fmt: skip


def chosen(*runs: Measurement, before: str = "gunicorn") -> auto.Decision:
    (decision,) = auto.choose(report.cells(list(runs), 512), RUN, {("wsgi", "io_bound"): before})
    return decision


CASES = {
    "the fastest wins": ([measured("gunicorn", 500), measured("granian", 600)], "granian"),
    "within noise, what auto picked before stays": ([measured("gunicorn", 590), measured("granian", 600)], "gunicorn"),
    "a server with fault caveats never": ([measured("gunicorn", 500), measured("hypercorn", 900)], "gunicorn"),
    "errors rule it out": ([measured("gunicorn", 500), measured("granian", 900, errors=3)], "gunicorn"),
    "a p99 past the bound rules it out": ([measured("gunicorn", 500, 100), measured("granian", 900, 400)], "gunicorn"),
    "over both frameworks, not the best of one": (
        [measured("gunicorn", 500), measured("granian", 560), measured("gunicorn", 300, framework="django"),
         measured("granian", 240, framework="django")],
        "gunicorn",
    ),
}  # fmt: skip


@pytest.mark.parametrize("runs, server", CASES.values(), ids=CASES.keys())
def test_auto_is_the_best_measured_server_that_qualifies(runs: list[Measurement], server: str) -> None:
    decision = chosen(*runs)
    assert decision.server == server and decision.incumbent == "gunicorn"
    assert decision.reason.startswith("measured best for io-bound WSGI")
    assert decision.reason.endswith(f"({RUN})")


def test_a_server_kept_within_noise_says_so() -> None:
    decision = chosen(measured("gunicorn", 600), measured("granian", 590), before="granian")
    assert decision.server == "granian"
    assert decision.reason.startswith("measured best for io-bound WSGI (kept: within 5% of the fastest): flask 590")
    assert "gunicorn 1.02 of it" in decision.reason


def test_the_reason_cites_the_figures_and_what_was_left_out() -> None:
    decision = chosen(measured("gunicorn", 500, 110), measured("granian", 600, 105), measured("hypercorn", 700))
    assert decision.server == "granian"
    assert "flask 600 req/s (p99 105 ms) at 1 CPU" in decision.reason
    assert "gunicorn 0.83 of it" in decision.reason
    assert "hypercorn out: fails the fault suite (killed_worker, sigterm, reload)" in decision.reason
    assert decision.figures == {"gunicorn": {"flask": [500, 110]}, "granian": {"flask": [600, 105]},
                                "hypercorn": {"flask": [700, 120]}}  # fmt: skip


def test_the_committed_choice_is_what_the_committed_run_measured() -> None:
    committed = json.loads((RESULTS / "auto.json").read_text())
    runs = [Measurement(**run) for run in json.loads((RESULTS / "results.json").read_text())["runs"]]
    before = {(choice["interface"], choice["workload"]): choice["incumbent"] for choice in committed["choices"]}
    recomputed = auto.as_json(auto.choose(report.cells(runs, 512), committed["run"], before), committed["run"])
    assert recomputed == committed
    # docs/benchmark.md names the same run.
    assert committed["run"].split("`")[1] in (TEMPLATE_ROOT / "docs" / "benchmark.md").read_text()


@pytest.mark.parametrize("interface", compat.INTERFACES)
@pytest.mark.parametrize("workload", compat.WORKLOADS)
def test_every_answer_has_a_measured_choice_that_survives_the_faults(interface: str, workload: str) -> None:
    server, reason = compat.auto_server(interface, workload)
    assert interface in compat.SERVER_INTERFACES[server]
    assert server not in compat.FAULT_CAVEATS
    assert reason.startswith(f"measured best for {workload.replace('_', '-')} {interface.upper()}")
    # What a bake with server=auto gets, and the reason it prints.
    asked = context(framework="django", interface=interface, server="auto", workload=workload)
    resolved = answers.resolve({"project_slug": "my_service", **asked})
    assert (resolved.server, resolved.server_reason) == (server, reason)
