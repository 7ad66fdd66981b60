"""The benchmark script runs end to end on a tiny configuration and writes its report.

This checks the script, not the figures: a timed assertion would fail on a busy machine. The
figures are bench/run's output, quoted in the README (test_docs checks the quote).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.workloads import DB_BUDGET
from pyserve_template import confine, tuning

from .conftest import TEMPLATE_ROOT

pytestmark = pytest.mark.e2e

TINY = [
    "--stacks", "wsgi", "--workloads", "io,static-nginx", "--contenders", "generated,bare",
    "--rounds", "1", "--duration", "1", "--warm-up", "0", "--memory", "384MiB",
]  # fmt: skip


def run_bench(tmp_path: Path, options: list[str]) -> tuple[subprocess.CompletedProcess[str], Path]:
    try:
        confine.Confinement.create(1, 64 * tuning.MIB, "pyserve-bench-check").remove()
    except confine.CannotConfine as error:
        pytest.skip(f"the benchmark needs a writable cgroup tree: {error}")
    out = tmp_path / "results"
    command = [sys.executable, "-m", "bench", *options, "--out", str(out), "--workdir", str(tmp_path / "work")]
    result = subprocess.run(command, cwd=TEMPLATE_ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result, out


def test_bench_measures_and_reports(tmp_path: Path) -> None:
    result, out = run_bench(tmp_path, TINY)

    # Side by side: every cell asked for, measured once; static files from nginx by the template only.
    runs = json.loads((out / "results.json").read_text())["runs"]
    cells = {(run["workload"], run["contender"]) for run in runs}
    assert cells == {("io", "generated"), ("io", "bare"), ("static-nginx", "generated")}
    for run in runs:
        assert run["note"] == "", run
        assert run["requests"] > 0 and run["errors"] == 0, run
        assert 0 < run["p50_ms"] <= run["p95_ms"] <= run["p99_ms"], run
        # The cgroup's own figures: the limit the bench set is the one the OOM killer used.
        assert 0 < run["peak_memory_mib"] < 384 and run["oom_kills"] == 0, run
        assert run["cpu_ms_per_request"] > 0, run
    generated_io = next(run for run in runs if (run["workload"], run["contender"]) == ("io", "generated"))
    # The generated server sized itself from the cgroup (1 CPU): gunicorn's master, 3 workers and the
    # metrics endpoint beside them.
    assert generated_io["workers"] == 5

    report = (out / "results.md").read_text()
    assert f"`bench/run {' '.join(TINY)} --out {out} --workdir {tmp_path / 'work'}`" in report
    assert "| WSGI | generated |" in report and "| WSGI | bare defaults |" in report
    assert "of limit)" in report and "1.00 of best)" in report  # ratios to Little's law and to the best
    assert "## Targets" in report and "of Little's law (target >= 0.8)" in report
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "bench: 3 runs in" in result.stdout


def test_bench_measures_the_connections_a_database_workload_takes(tmp_path: Path) -> None:
    """Against a real PostgreSQL the benchmark starts: each run reports the app's most connections."""
    options = ["--stacks", "wsgi", "--workloads", "db", "--contenders", "generated,pool_per_thread", "--rounds", "1",
               "--duration", "2", "--warm-up", "0"]  # fmt: skip
    _, out = run_bench(tmp_path, options)
    runs = {run["contender"]: run for run in json.loads((out / "results.json").read_text())["runs"]}
    assert set(runs) == {"generated", "pool_per_thread"}
    for run in runs.values():
        assert run["note"] == "" and run["requests"] > 0 and run["errors"] == 0, run
        assert run["db_connections"] > 0 and run["db_refused"] >= 0, run
    assert runs["generated"]["db_connections"] <= DB_BUDGET
    report = (out / "results.md").read_text()
    assert "## Database" in report and "| WSGI | pool per thread |" in report
