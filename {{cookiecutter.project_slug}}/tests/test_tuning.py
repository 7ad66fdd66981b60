"""The plan this project starts with: the numbers in the README are the ones the server gets."""

import json
import subprocess
import sys
from pathlib import Path

from deploy.settings import PROJECT
from deploy.tuning import inputs, machine, model
from loadtest import tune


def run_tuning(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deploy.tuning", *args],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **env},
        check=False,
    )


def test_plan_as_json_names_the_numbers_and_why() -> None:
    plan = json.loads(run_tuning("--json").stdout)
    assert plan["workers"] >= 1 and plan["threads"] >= 1
    assert set(plan["reasons"]) >= {"workers", "threads"}


def test_web_concurrency_wins() -> None:
    assert json.loads(run_tuning("--json", WEB_CONCURRENCY="7").stdout)["workers"] == 7


def test_a_bad_limit_is_one_line_and_exit_2() -> None:
    result = run_tuning("--json", CPU_LIMIT="lots")
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("tuning: CPU_LIMIT: 'lots' is not a number; give cores as a number > 0")


def test_a_cgroup_root_is_read_as_the_container(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpu memory\n")
    (tmp_path / "cpu.max").write_text("50000 100000\n")
    (tmp_path / "memory.max").write_text(f"{1024 * 1024 * 1024}\n")
    plan = json.loads(run_tuning("--json", "--cgroup-root", str(tmp_path)).stdout)
    assert (plan["cpus"], plan["memory_limit_bytes"]) == (0.5, 1024 * 1024 * 1024)
    assert plan["limits"]["cpus"]["from"] == f"cgroup v2 cpu.max in {tmp_path}"


def test_make_tune_sweeps_around_the_plan() -> None:
    plan = inputs.plan_from_environment({}, machine.load_stack())
    settings = tune.sweep(plan)
    assert (plan.workers, plan.threads) in {(setting.workers, setting.threads) for setting in settings}
    assert {setting.workers for setting in settings} >= {plan.workers, min(model.MAX_WORKERS, 2 * plan.workers)}
    given = tune.sweep(plan, workers=[1, 4], threads=[8])
    assert [(setting.workers, setting.threads) for setting in given][:2] == [(1, 8), (4, 8)]
