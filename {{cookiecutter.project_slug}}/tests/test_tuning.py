"""The plan this project starts with: the numbers in the README are the ones the server gets."""

import json
import subprocess
import sys
from pathlib import Path

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def run_tuning(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(DEPLOY / "tuning.py"), *args],
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
