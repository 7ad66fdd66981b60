"""Under real cgroup limits on this machine, as in a container: each server sizes itself from its
cgroup, runs that many workers, and survives a load run at the tightest memory limit the model
allows, without an OOM kill.

`make local CONFINE=1` puts the app server (not nginx) in a new cgroup with CPU_LIMIT and
MEMORY_LIMIT, and hides those two variables from it: the server has to find the limits in the
cgroup. The answers say 4 CPUs, so a server that read them, or os.cpu_count(), would start another
number of workers than the 1.5-CPU cgroup gives.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
from pathlib import Path

import pytest

from pyserve_template import machine, tuning, values
from pyserve_template.baking import TOOLS, project_venv
from pyserve_template.matrix import ONE_PER_SERVER

from .stack import CONFINED_TO, Stack, require_writable_cgroups, running_stack
from .test_e2e import check_workers_fit_the_memory_model

pytestmark = pytest.mark.e2e

MIB = values.MIB
CONFINED_CPUS = 1.5
ANSWERS = {"cpu_limit": "4", "memory_limit": "2GiB"}
CONFINED = ONE_PER_SERVER
LOAD = {
    "LOCUST_USERS": "64",
    "LOCUST_SPAWN_RATE": "64",
    "LOCUST_RUN_TIME": "10s",
    "LOCUST_THINK_TIME": "0",
    "LOCUST_MAX_FAIL_RATIO": "0",
    "LOCUST_MAX_P95_MS": "10000",  # this test is about surviving, not latency
}
PLAN_INPUTS = ("framework", "interface", "server", "workload")
USAGE = re.compile(r"local: confined app server: peak memory (.+) of (.+), OOM kills (\d+)")


def tightest_memory_mib(stack: dict[str, str]) -> int:
    """The smallest limit that still fits the CPU-based worker count: the model's own edge."""
    by_cpu = planned(CONFINED_CPUS, None, stack)
    return math.ceil(by_cpu.memory_needed_bytes / MIB / (1 - tuning.MEMORY_HEADROOM))


def planned(cpus: float, memory_bytes: int | None, stack: dict[str, str]) -> tuning.Plan:
    """The model for the project's answers and memory figures (its deploy/stack.toml), the
    WebSockets an ASGI stack expects among them."""
    figures = {f"{kind}_memory_bytes": int(stack[f"{kind}_memory_mib"]) * MIB for kind in ("worker", "server")}
    long_lived = {
        "long_lived_connections": int(stack.get("connections_expected", "0")),
        "connection_memory_bytes": int(stack.get("connections_memory_kib", "0")) * 1024,
    }
    return tuning.plan(cpus, memory_bytes, *(stack[key] for key in PLAN_INPUTS), **figures, **long_lived)


def run_load(stack: Stack) -> str:
    command = ["make", "loadtest", f"LOCUST={TOOLS / 'locust'}", f"HOST=http://127.0.0.1:{stack.http_port}"]
    result = subprocess.run(
        command, cwd=stack.project, env={**os.environ, **LOAD}, capture_output=True, text=True, timeout=120
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "loadtest: passed" in output, output[-4000:]
    return output


@pytest.mark.parametrize("server", CONFINED)
def test_server_sizes_itself_from_a_real_cgroup_and_survives_load(fresh_bake, server: str) -> None:
    project = fresh_bake(**CONFINED[server], **ANSWERS)
    venv = project_venv(project)
    require_writable_cgroups(project, venv)
    stack_answers = machine.load_stack(project / "deploy" / "stack.toml")
    memory_mib = tightest_memory_mib(stack_answers)
    expected = planned(CONFINED_CPUS, memory_mib * MIB, stack_answers)
    env = {"CPU_LIMIT": f"{CONFINED_CPUS}", "MEMORY_LIMIT": f"{memory_mib}MiB"}

    with running_stack(project, venv, env, ("CONFINE=1",)) as stack:
        plan = stack.plan()
        assert plan["cpus"] == CONFINED_CPUS and plan["limits"]["cpus"]["from"].startswith("cgroup v")
        assert plan["memory_limit_bytes"] == memory_mib * MIB
        assert plan["limits"]["memory"]["from"].startswith("cgroup v")
        assert plan["workers"] == expected.workers
        assert len(stack.worker_pids()) == expected.workers, "the server runs another number of workers"
        load = run_load(stack)
        assert len(stack.worker_pids()) == expected.workers, "workers died under load"
        check_workers_fit_the_memory_model(stack)

    log = stack.output()
    [(peak, limit, oom_kills)] = USAGE.findall(log)
    [summary] = [line for line in load.splitlines() if line.startswith("loadtest: passed")]
    print(f"confined {server}: {expected.workers} workers in {limit}, peak {peak}; {summary}")
    assert oom_kills == "0", log[-4000:]
    [places] = CONFINED_TO.findall(log)
    assert not any(Path(place).exists() for place in places.split(", ")), "the cgroup was left behind"
