"""The container's real limits, read from cgroup trees built as the kernel lays them out.

Each case builds a /sys/fs/cgroup (and where it matters a /proc/self) in a temp dir, reads it with
tuning/machine.py and checks the limit the plan uses, where it came from, and the workers it gives.
The machine's own CPU affinity is left out so that the cases mean the same on every machine.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from stacks import STACK  # flask, WSGI, gunicorn, mixed; answers 1 CPU, 512 MiB

from pyserve_runtime import values
from pyserve_runtime.tuning import inputs as plan_inputs
from pyserve_runtime.tuning import machine
from pyserve_runtime.tuning import model as tuning

MIB = values.MIB
V1_NO_LIMIT = "9223372036854771712"  # what cgroup v1 writes for "no limit" on 4 KiB pages
MEMINFO = "MemTotal:       16384000 kB\nMemFree:        8000000 kB\n"


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text + "\n")
    return root


def v1(quota: str = "-1", cpus: str = "0-7", memory: str = V1_NO_LIMIT, cpu_dir: str = "cpu,cpuacct") -> dict[str, str]:
    return {
        f"{cpu_dir}/cpu.cfs_quota_us": quota,
        f"{cpu_dir}/cpu.cfs_period_us": "100000",
        "cpuset/cpuset.cpus": cpus,
        "memory/memory.limit_in_bytes": memory,
    }


def v2(cpu_max: str = "max 100000", cpus: str = "0-7", memory: str = "max") -> dict[str, str]:
    return {
        "cgroup.controllers": "cpuset cpu io memory pids",
        "cpu.max": cpu_max,
        "cpuset.cpus.effective": cpus,
        "memory.max": memory,
    }


def hybrid(**v1_limits: str) -> dict[str, str]:
    """systemd's hybrid layout: controllers on v1, an empty v2 tree in unified/."""
    return {**v1(**v1_limits), "unified/cgroup.controllers": "", "unified/cgroup.procs": "1"}


ANSWER = "stack.toml (the answer at generation)"

# tree -> (cores, bytes, where the cores came from, where the memory came from, workers x threads)
TREES: dict[str, tuple[dict[str, str], tuple]] = {
    "v2 half a CPU": (
        v2("50000 100000", memory="268435456"),
        (0.5, 256 * MIB, "cgroup v2 cpu.max", "cgroup v2 memory.max", (2, 16)),
    ),
    "v2 unlimited falls back to the answers": (v2(), (1.0, 512 * MIB, ANSWER, ANSWER, (3, 32))),
    "v1 one and a half CPUs": (
        v1("150000", memory=str(1024 * MIB)),
        (1.5, 1024 * MIB, "cgroup v1 cpu.cfs_quota_us", "cgroup v1 memory.limit_in_bytes", (4, 48)),
    ),
    "v1 with cpu/ on its own": (
        v1("200000", cpu_dir="cpu"),
        (2.0, 512 * MIB, "cgroup v1 cpu.cfs_quota_us", ANSWER, (5, 64)),
    ),
    "v1 unlimited (-1 and the page-counter maximum)": (v1(), (1.0, 512 * MIB, ANSWER, ANSWER, (3, 32))),
    "hybrid: limits on v1, an empty unified tree": (
        hybrid(quota="50000", memory=str(256 * MIB)),
        (0.5, 256 * MIB, "cgroup v1 cpu.cfs_quota_us", "cgroup v1 memory.limit_in_bytes", (2, 16)),
    ),
    "cpuset smaller than the quota": (
        v2("400000 100000", cpus="3"),
        (1.0, 512 * MIB, "cgroup v2 cpuset.cpus.effective", ANSWER, (3, 32)),
    ),
    "v1 cpuset smaller than the quota": (
        v1("400000", cpus="0-1"),
        (2.0, 512 * MIB, "cgroup v1 cpuset.cpus", ANSWER, (5, 64)),
    ),
    # 4 CPUs want 9 workers; 200 MiB * 0.8 - 40 MiB fits 2 x 50 MiB, each with threads for 128 in flight (capped at 64).
    "memory too small for the CPU-based worker count": (
        v2("400000 100000", memory=str(200 * MIB)),
        (4.0, 200 * MIB, "cgroup v2 cpu.max", "cgroup v2 memory.max", (2, 64)),
    ),
    "the machine's memory is a ceiling for the answer": (
        {**v2(), "meminfo": "MemTotal:         262144 kB"},
        (1.0, 256 * MIB, ANSWER, "MemTotal", (3, 32)),
    ),
}


def read_tree(tmp_path: Path, files: dict[str, str]) -> list[tuning.Found]:
    meminfo = files.pop("meminfo", MEMINFO)
    root = write(tmp_path / "cgroup", files)
    proc = write(tmp_path / "proc", {"meminfo": meminfo})
    return machine.read_system_limits(root, proc, affinity=False)


@pytest.mark.parametrize(("files", "expected"), TREES.values(), ids=TREES.keys())
def test_limits_read_from_a_cgroup_tree(tmp_path: Path, files: dict[str, str], expected: tuple) -> None:
    cpus, memory, cpus_from, memory_from, (workers, threads) = expected
    plan = plan_inputs.plan_from_environment({}, STACK, read_tree(tmp_path, dict(files)))
    assert (plan.cpus, plan.memory_limit_bytes) == (cpus, memory)
    assert plan.limits["cpus"]["from"].startswith(cpus_from)
    assert plan.limits["memory"]["from"].startswith(memory_from)
    assert (plan.workers, plan.threads) == (workers, threads)


ENVIRONMENT_AGAINST_CGROUP = {
    "CPU_LIMIT below the quota wins": ({"CPU_LIMIT": "500m"}, 0.5, "CPU_LIMIT"),
    "the quota below CPU_LIMIT wins": ({"CPU_LIMIT": "8"}, 1.5, "cgroup v2 cpu.max"),
    "MEMORY_LIMIT below the cgroup's wins": ({"MEMORY_LIMIT": "200MiB"}, 1.5, "cgroup v2 cpu.max"),
}


@pytest.mark.parametrize(
    ("env", "cpus", "cpus_from"), ENVIRONMENT_AGAINST_CGROUP.values(), ids=ENVIRONMENT_AGAINST_CGROUP
)
def test_the_smallest_of_environment_and_cgroup_wins(tmp_path: Path, env: dict, cpus: float, cpus_from: str) -> None:
    found = read_tree(tmp_path, v2("150000 100000", memory=str(300 * MIB)))
    plan = plan_inputs.plan_from_environment(env, STACK, found)
    assert plan.cpus == cpus
    assert plan.limits["cpus"]["from"].startswith(cpus_from)
    assert plan.memory_limit_bytes == (200 if "MEMORY_LIMIT" in env else 300) * MIB


def proc_self(tmp_path: Path, cgroup: str, mountinfo: Callable[[Path], str]) -> Path:
    root = tmp_path / "sys-fs-cgroup"
    return write(tmp_path / "proc", {"self/cgroup": cgroup, "self/mountinfo": mountinfo(root), "meminfo": MEMINFO})


def test_a_nested_cgroup_on_a_host_takes_its_parents_limit(tmp_path: Path) -> None:
    """systemd on a v2 host: the service's cgroup has no limit of its own, its slice has one."""
    root = write(
        tmp_path / "sys-fs-cgroup",
        {
            "cgroup.controllers": "cpuset cpu memory",
            "cpu.max": "max 100000",
            "web.slice/cpu.max": "75000 100000",
            "web.slice/memory.max": str(384 * MIB),
            "web.slice/app.service/cpu.max": "max 100000",
            "web.slice/app.service/memory.max": "max",
            "web.slice/app.service/cpuset.cpus.effective": "0-3",
        },
    )
    proc = proc_self(
        tmp_path,
        "0::/web.slice/app.service",
        lambda root: (
            f"30 1 0:26 / {root} rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"
            f"22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw"
        ),
    )
    found = machine.read_system_limits(None, proc, affinity=False)
    plan = plan_inputs.plan_from_environment({}, STACK, found)
    assert (plan.cpus, plan.memory_limit_bytes) == (0.75, 384 * MIB)
    assert plan.limits["cpus"]["from"] == f"cgroup v2 cpu.max in {root / 'web.slice'}"
    assert any(
        "cpuset.cpus.effective in" in source and value == 4 for source, value in plan.limits["cpus"]["found"].items()
    )


def test_inside_a_v1_container_without_a_cgroup_namespace(tmp_path: Path) -> None:
    """Docker on a v1 host: /proc/self/cgroup names the host's path, the mount's root is that path."""
    container = "/docker/3f2a"
    root = write(tmp_path / "sys-fs-cgroup", v1("50000", memory=str(256 * MIB)))
    lines = [
        f"41 30 0:35 {container} {root / 'cpu,cpuacct'} ro,nosuid - cgroup cgroup rw,cpu,cpuacct",
        f"42 30 0:36 {container} {root / 'cpuset'} ro,nosuid - cgroup cgroup rw,cpuset",
        f"43 30 0:37 {container} {root / 'memory'} ro,nosuid - cgroup cgroup rw,memory",
        f"44 30 0:38 {container} {root / 'pids'} ro,nosuid - cgroup cgroup rw,pids",
    ]
    proc = proc_self(
        tmp_path,
        f"12:pids:{container}\n5:memory:{container}\n3:cpuset:{container}\n2:cpu,cpuacct:{container}\n1:name=systemd:{container}",
        lambda _: "\n".join(lines),
    )
    plan = plan_inputs.plan_from_environment({}, STACK, machine.read_system_limits(None, proc, affinity=False))
    assert (plan.cpus, plan.memory_limit_bytes) == (0.5, 256 * MIB)


def test_without_cgroups_only_the_machine_is_a_ceiling(tmp_path: Path) -> None:
    proc = write(tmp_path / "proc", {"self/cgroup": "", "self/mountinfo": "", "meminfo": MEMINFO})
    found = machine.read_system_limits(None, proc, affinity=False)
    assert [(item.resource, item.kind) for item in found] == [("memory", "ceiling")]


@pytest.mark.parametrize(("text", "count"), [("0", 1), ("0-3", 4), ("0-3,8,10-11", 7), ("", 0), ("5\n", 1)])
def test_kernel_cpu_lists_count(text: str, count: int) -> None:
    assert machine.count_cpus(text) == count
