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
from pyserve_template import confine, values

from .conftest import TEMPLATE_ROOT

pytestmark = pytest.mark.e2e


def run_bench(tmp_path: Path, options: list[str]) -> tuple[subprocess.CompletedProcess[str], Path]:
    try:
        confine.Confinement.create(1, 64 * values.MIB, "pyserve-bench-check").remove()
    except confine.CannotConfine as error:
        pytest.skip(f"the benchmark needs a writable cgroup tree: {error}")
    out = tmp_path / "results"
    command = [sys.executable, "-m", "bench", *options, "--out", str(out), "--workdir", str(tmp_path / "work")]
    result = subprocess.run(command, cwd=TEMPLATE_ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result, out


def test_bench_quick_runs_every_part_and_reports(tmp_path: Path) -> None:
    """`bench/run --quick`: one stack through the servers, contenders and growth parts."""
    result, out = run_bench(tmp_path, ["--quick"])

    # Side by side: every cell asked for, measured once, even where two parts asked for it.
    runs = json.loads((out / "results.json").read_text())["runs"]
    cells = {(run["workload"], run["contender"], run["connections"]): run for run in runs}
    assert set(cells) == {("empty", "generated", 64), ("io", "generated", 64), ("io", "bare", 64),
                          ("io", "generated", 16)}  # fmt: skip
    assert len(runs) == len(cells)
    assert set(cells["io", "generated", 64]["parts"].split(",")) == {"servers", "contenders", "growth"}
    for run in runs:
        assert (run["server"], run["framework"], run["cpus"]) == ("gunicorn", "flask", 1.0), run
        assert run["note"] == "", run
        assert run["requests"] > 0 and run["errors"] == 0, run
        assert 0 < run["p50_ms"] <= run["p95_ms"] <= run["p99_ms"], run
        # The cgroup's own figures: the limit the bench set is the one the OOM killer used.
        assert 0 < run["peak_memory_mib"] < 512 and run["oom_kills"] == 0, run
        assert run["cpu_ms_per_request"] > 0, run
    # The generated server sized itself from the cgroup (1 CPU): gunicorn's master, 3 workers and the
    # metrics endpoint beside them.
    assert cells["io", "generated", 64]["workers"] == 5

    report = (out / "results.md").read_text()
    assert f"`bench/run --quick --out {out} --workdir {tmp_path / 'work'}`" in report
    assert "| WSGI flask on gunicorn |" in report  # the servers table
    assert "| WSGI | generated |" in report and "| WSGI | bare defaults |" in report  # the contenders
    assert "## How cost grows" in report and "| WSGI flask on gunicorn | 16 |" in report
    assert "## What `auto` picks" in report and "- WSGI io_bound: **gunicorn**:" in report
    assert "## Targets" in report and "of the stack's limit" in report
    for chart in ("results.png", "growth.png"):
        assert (out / chart).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The choice it made from one server is written where the template would read it.
    choices = json.loads((out / "auto.json").read_text())["choices"]
    assert [(c["interface"], c["workload"], c["server"]) for c in choices] == [("wsgi", "io_bound", "gunicorn")]
    assert "bench: 4 runs in" in result.stdout


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
