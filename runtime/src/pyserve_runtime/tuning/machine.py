"""What this container may use: the limits the tuning model plans on, read from the machine.

Containers lie to os.cpu_count(): it counts the host's cores and ignores the CPU quota. The truth
is in this process's cgroup, found through /proc/self/cgroup and /proc/self/mountinfo, so that a
container (where the own cgroup is the root) and a nested cgroup on a host both read right. Beside
it: the cpuset and the CPU affinity, the machine's memory (MemTotal), the environment and the
answers in deploy/stack.toml. confine.py makes cgroups with the same discovery.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..settings import STACK_FILE, stack_answers
from .inputs import plan_from_environment
from .model import Found, Plan

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC = Path("/proc")
# cgroup v1 writes "no memory limit" as the largest page-aligned counter (9223372036854771712 with
# 4 KiB pages, other values with other page sizes): anything past 2^62 bytes is no limit.
V1_NO_LIMIT = 2**62
CONTROLLERS = ("cpu", "cpuset", "memory")
# Where the CPU time a cgroup used is counted: in cgroup v1 its own controller (confine.py
# reads it to report CPU time per request); in v2, cpu.stat of the cpu controller.
ACCOUNTING = "cpuacct"


@dataclass(frozen=True)
class Cgroup:
    """Where one controller's files for this process are: `directory`, inside the mount at `top`."""

    version: int
    directory: Path
    top: Path

    def chain(self) -> list[Path]:
        """The own directory, then each parent up to the mount: a parent's limit binds its children."""
        chain = [self.directory]
        while chain[-1] != self.top and self.top in chain[-1].parents:
            chain.append(chain[-1].parent)
        return chain


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _inside(mount_point: Path, mount_root: str, cgroup_path: str) -> Path:
    """The directory of `cgroup_path` under a mount of the hierarchy's `mount_root`.

    Inside a container the mount root is the container's own cgroup (/docker/<id>, or / with a
    cgroup namespace), so the path relative to it is "."; a path outside the mount (a cgroup the
    container cannot see) reads as the mount point itself.
    """
    path, root = Path(cgroup_path), Path(mount_root)
    return mount_point / path.relative_to(root) if path.is_relative_to(root) else mount_point


def cgroups_of_this_process(proc: Path = PROC, controllers: tuple[str, ...] = CONTROLLERS) -> dict[str, Cgroup]:
    """For each controller (cpu, cpuset, memory): this process's cgroup directory, from
    /proc/self/{cgroup,mountinfo}."""
    v1_paths: dict[str, str] = {}  # controller -> cgroup path
    v2_path = None
    for line in (_read(proc / "self" / "cgroup") or "").splitlines():
        _, names, path = line.split(":", 2)
        if names:
            v1_paths.update(dict.fromkeys(names.split(","), path))
        else:
            v2_path = path
    v1: dict[str, Cgroup] = {}
    v2 = None
    for line in (_read(proc / "self" / "mountinfo") or "").splitlines():
        mount, _, filesystem = line.partition(" - ")
        mount_fields, filesystem_fields = mount.split(), filesystem.split()
        mount_root, mount_point = mount_fields[3], Path(mount_fields[4].replace("\\040", " "))
        fstype, super_options = filesystem_fields[0], filesystem_fields[-1].split(",")
        if fstype == "cgroup2" and v2_path is not None:
            v2 = Cgroup(2, _inside(mount_point, mount_root, v2_path), mount_point)
        elif fstype == "cgroup":
            for controller in set(super_options) & set(controllers) & v1_paths.keys():
                v1[controller] = Cgroup(1, _inside(mount_point, mount_root, v1_paths[controller]), mount_point)
    found = {name: v1.get(name) or v2 for name in controllers}
    return {name: cgroup for name, cgroup in found.items() if cgroup is not None}


def cgroups_under(root: Path) -> dict[str, Cgroup]:
    """For --cgroup-root: read `root` as /sys/fs/cgroup, with this process in the root cgroup.

    v1 mounts a directory per controller (cpu/ or cpu,cpuacct/, cpuset/, memory/); v2 is one tree
    with cgroup.controllers at the top, at the root itself or, on a hybrid host, in unified/.
    """
    found: dict[str, Cgroup] = {}
    v2_top = next((top for top in (root, root / "unified") if (top / "cgroup.controllers").exists()), None)
    for controller in CONTROLLERS:
        mounts = [path for path in root.glob("*") if controller in path.name.split(",") and path.is_dir()]
        if mounts:
            found[controller] = Cgroup(1, mounts[0], mounts[0])
        elif v2_top is not None:
            found[controller] = Cgroup(2, v2_top, v2_top)
    return found


def _cpu_quota(cgroup: Cgroup) -> Found | None:
    """The smallest CPU quota on the way up, in cores (fractions kept: 50000/100000 is 0.5)."""
    quotas = []
    for directory in cgroup.chain():
        if cgroup.version == 2:
            quota, _, period = (_read(directory / "cpu.max") or "max").partition(" ")
            name = "cpu.max"
        else:
            quota, period = _read(directory / "cpu.cfs_quota_us") or "-1", _read(directory / "cpu.cfs_period_us") or ""
            name = "cpu.cfs_quota_us / cpu.cfs_period_us"
        if quota.isdigit() and period.isdigit() and int(quota) > 0 and int(period) > 0:
            source = f"cgroup v{cgroup.version} {name} in {directory}"
            quotas.append(Found("cpus", int(quota) / int(period), source, "quota"))
    return min(quotas, key=lambda found: found.value, default=None)


def count_cpus(cpu_list: str) -> int:
    """CPUs in a kernel CPU list such as "0-3,8,10-11" (12 -> 1, "" -> 0)."""
    count = 0
    for part in filter(None, cpu_list.strip().split(",")):
        first, _, last = part.partition("-")
        count += int(last or first) - int(first) + 1
    return count


def _cpuset(cgroup: Cgroup) -> Found | None:
    """The CPUs the cgroup may run on: its effective set, which already has the ancestors' in it."""
    names = (
        ("cpuset.cpus.effective", "cpuset.cpus") if cgroup.version == 2 else ("cpuset.effective_cpus", "cpuset.cpus")
    )
    for directory in cgroup.chain():
        for name in names:
            text = _read(directory / name)
            if text and count_cpus(text) > 0:
                return Found("cpus", count_cpus(text), f"cgroup v{cgroup.version} {name} in {directory}", "ceiling")
    return None


def _memory_limit(cgroup: Cgroup) -> Found | None:
    """The smallest memory limit on the way up; "max" (v2) and the v1 sentinel are no limit."""
    name = "memory.max" if cgroup.version == 2 else "memory.limit_in_bytes"
    limits = []
    for directory in cgroup.chain():
        text = _read(directory / name) or ""
        if text.isdigit() and 0 < int(text) < V1_NO_LIMIT:
            limits.append(Found("memory", int(text), f"cgroup v{cgroup.version} {name} in {directory}"))
    return min(limits, key=lambda found: found.value, default=None)


def _physical_memory(proc: Path) -> Found | None:
    for line in (_read(proc / "meminfo") or "").splitlines():
        name, _, value = line.partition(":")
        if name == "MemTotal" and value.split()[0].isdigit():
            return Found("memory", int(value.split()[0]) * 1024, f"MemTotal in {proc / 'meminfo'}", "ceiling")
    return None


def _affinity() -> Found | None:
    if not hasattr(os, "sched_getaffinity"):
        return None
    return Found("cpus", len(os.sched_getaffinity(0)), "the process's CPU affinity (sched_getaffinity)", "ceiling")


def read_system_limits(cgroup_root: Path | None = None, proc: Path = PROC, *, affinity: bool = True) -> list[Found]:
    """Every CPU and memory limit this process is under: cgroup v1 or v2 (or both, on a hybrid
    host), the affinity mask and the machine's memory. `cgroup_root` reads a directory as if it
    were /sys/fs/cgroup with the process in its root cgroup (for tests and for inspecting a host).
    """
    cgroups = cgroups_under(cgroup_root) if cgroup_root else cgroups_of_this_process(proc)
    readings = [
        _cpu_quota(cgroups["cpu"]) if "cpu" in cgroups else None,
        _cpuset(cgroups["cpuset"]) if "cpuset" in cgroups else None,
        _affinity() if affinity else None,
        _memory_limit(cgroups["memory"]) if "memory" in cgroups else None,
        _physical_memory(proc),
    ]
    return [found for found in readings if found is not None]


def load_stack(path: Path = STACK_FILE) -> dict[str, str]:
    """The answers the project was generated with and the memory figures they give (deploy/stack.toml)."""
    data = stack_answers(path)
    return {
        **data["stack"],
        **{f"{key}_limit": str(value) for key, value in data["limits"].items()},
        **{f"{key}_memory_mib": str(value) for key, value in data["memory"].items()},
        **{f"connections_{key}": str(value) for key, value in data.get("connections", {}).items()},
        **database_answers(data.get("database", {})),
    }


def database_answers(table: dict[str, object]) -> dict[str, str]:
    """[database]: the engine, and with one the connection budget and the most replicas."""
    answers = {"database": str(table.get("engine", "none"))}
    if "max_connections" in table:
        answers["db_max_connections"] = str(table["max_connections"])
    if "max_replicas" in table:
        answers["max_replicas"] = str(table["max_replicas"])
    return answers


def start_up_plan(cgroup_root: Path | None = None) -> Plan:
    """The plan for this container, now: what every server's start-up calls."""
    return plan_from_environment(os.environ, load_stack(), read_system_limits(cgroup_root))
