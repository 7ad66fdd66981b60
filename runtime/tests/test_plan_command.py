"""`pyserve plan`, `--version`, and the command line's refusals, as a shell runs them."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

from commands import pyserve

from pyserve_runtime import __version__, cli, tune
from pyserve_runtime.tuning import machine, model

MIB = 1024 * 1024


def test_plan_as_json_names_the_numbers_and_why(project: Path) -> None:
    plan = json.loads(pyserve(project, "plan", "--json", "--answers-only").stdout)
    assert (plan["cpus"], plan["memory_limit_bytes"]) == (1.0, 512 * MIB)
    assert plan["workers"] >= 1 and plan["threads"] >= 1
    assert set(plan["reasons"]) >= {"workers", "threads"}


def test_web_concurrency_wins(project: Path) -> None:
    assert json.loads(pyserve(project, "plan", "--json", WEB_CONCURRENCY="7").stdout)["workers"] == 7


def test_a_bad_limit_is_one_line_and_exit_2(project: Path) -> None:
    result = pyserve(project, "plan", "--json", CPU_LIMIT="lots")
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("tuning: CPU_LIMIT: 'lots' is not a number; give cores as a number > 0")


def test_a_cgroup_root_is_read_as_the_container(project: Path, tmp_path: Path) -> None:
    cgroup = tmp_path / "cgroup"
    cgroup.mkdir()
    (cgroup / "cgroup.controllers").write_text("cpu memory\n")
    (cgroup / "cpu.max").write_text("50000 100000\n")
    (cgroup / "memory.max").write_text(f"{1024 * MIB}\n")
    plan = json.loads(pyserve(project, "plan", "--json", "--cgroup-root", str(cgroup)).stdout)
    assert (plan["cpus"], plan["memory_limit_bytes"]) == (0.5, 1024 * MIB)
    assert plan["limits"]["cpus"]["from"] == f"cgroup v2 cpu.max in {cgroup}"


def test_an_unknown_command_is_one_line_naming_the_commands(project: Path) -> None:
    result = pyserve(project, "srve")
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("pyserve: no command 'srve'; the commands are serve, healthcheck, plan")


def test_the_version_is_the_package_version(project: Path) -> None:
    assert pyserve(project, "--version").stdout.strip() == f"pyserve-runtime {__version__}"


def test_tune_sweeps_around_the_plan(project: Path) -> None:
    plan = machine.plan_from_environment({}, machine.load_stack(project / "deploy" / "stack.toml"))
    settings = tune.sweep(plan)
    assert (plan.workers, plan.threads) in {(setting.workers, setting.threads) for setting in settings}
    assert {setting.workers for setting in settings} >= {plan.workers, min(model.MAX_WORKERS, 2 * plan.workers)}
    given = tune.sweep(plan, workers=[1, 4], threads=[8])
    assert [(setting.workers, setting.threads) for setting in given][:2] == [(1, 8), (4, 8)]


def test_the_readme_lists_the_commands_pyserve_help_lists() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    listed = re.search(r"^```text\n(.*?)^```", readme, re.MULTILINE | re.DOTALL)
    assert listed is not None and listed.group(1).rstrip() == textwrap.dedent(cli.usage())
