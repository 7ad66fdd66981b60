"""How many workers and threads this service runs, and why: the one tuning model of pyserve-template.

The template runs this module when it generates the project (to print the plan and write it into
the README) and ships it verbatim as deploy/tuning.py, where the server's config calls it at
start-up. It is pure Python with no dependencies: `plan()` is a pure function of its inputs;
`plan_from_environment()` adds the environment and deploy/stack.toml around it.

    python deploy/tuning.py            # the plan, explained
    python deploy/tuning.py --json     # the same as one JSON line (what the server logs)

    python deploy/tuning.py --cgroup-root DIR   # as if DIR were /sys/fs/cgroup

The limits are the smallest of those set for this container: the cgroup's CPU quota and memory
limit (v1 or v2, this cgroup or a parent) and CPU_LIMIT / MEMORY_LIMIT from the environment. Where
none is set, the answers in deploy/stack.toml stand in. Either way, never more than the CPUs the
process may run on (cpuset, affinity) or the machine's memory. Fractions stay: 1.5 CPU is 1.5.

Environment, strongest first:
    WEB_CONCURRENCY, WEB_THREADS   workers and threads, taken as given
    WORKER_MEMORY                  your app's measured memory per worker (e.g. 180MiB)
    CPU_LIMIT, MEMORY_LIMIT        the container's limits, as an orchestrator passes them in
    CPU_LIMIT_MILLICORES           the CPU limit as a whole number of millicores (the Downward API's
                                   limits.cpu with divisor 1m, which a bare CPU_LIMIT would read as cores)

Figures marked "benchmark" are pyserve-template's: the sample app behind nginx, loaded by wrk, the
app server in a cgroup with the stated CPU quota, on a 2-core machine (https://github.com/org/pyserve-template/tree/main/bench/results).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

MIB = 1024 * 1024

FRAMEWORKS = ("fastapi", "django", "flask", "quart", "starlette", "litestar")
INTERFACES = ("asgi", "wsgi")
SERVERS = ("gunicorn", "uvicorn", "hypercorn", "granian")
WORKLOADS = ("io_bound", "mixed", "cpu_bound")

# Resident memory (RSS) of one worker running the framework's sample app, the largest seen under
# any server right after a load run (32 users back to back for 5 s through nginx; 64 for 10 s in
# the cgroup test), read from /proc/PID/status by the template's e2e tests, which fail when a
# worker outgrows its figure here. Python 3.11, November 2026, in MiB; the figures are about 10%
# above, in steps of 5:
#   flask 43.7 (hypercorn; gunicorn 34.8), django 54.8 (uvicorn), fastapi 52.4, starlette 37.7,
#   quart 46.7, litestar 48.0.
# These are floors: your own app imports more. Measure a worker of it and set WORKER_MEMORY.
WORKER_MEMORY_MIB = {
    "flask": 50,
    "django": 60,
    "fastapi": 60,
    "starlette": 45,
    "quart": 55,
    "litestar": 55,
}

# Memory of what runs beside the workers, measured the same way: gunicorn's arbiter 26.6 MiB with
# WSGI workers, 32.9 with uvicorn-worker imported; uvicorn's supervisor with its multiprocessing
# resource tracker 40.5 (deploy/uvicorn_server.py runs it for one worker too); hypercorn's
# 42.8 with its tracker; granian's 31.4.
SERVER_MEMORY_MIB = {"gunicorn": 40, "uvicorn": 45, "hypercorn": 50, "granian": 35}

# Part of the limit no worker may plan on: page cache, heap growth between worker recycles, and a
# burst of large request bodies. The kernel OOM-kills at the limit, not near it.
MEMORY_HEADROOM = 0.20

# A thread costs little memory (64 gthread threads under load added 3 MiB to a Flask worker) but
# every in-flight request holds the GIL for its CPU part, so threads are bounded by that, not RAM.
MAX_THREADS = 64

# Past this, one container is better split into replicas: every worker holds its own database
# pool and warm caches, and one host's accept queue is a single point of failure.
MAX_WORKERS = 32

# Requests in flight per CPU that an I/O-bound WSGI service needs (Little's law): a request that
# spends ~1/64 of its time on the CPU (1.5 ms of 100 ms) saturates a core only at ~64 in flight.
# The common advice of 2 threads per worker would hold a 1-CPU gunicorn to 3 x 2 = 6 in flight:
# 60 req/s at 100 ms.
IO_BOUND_REQUESTS_PER_CPU = 64
# A mixed workload spends a real part of each request on the CPU, so it saturates the CPU with
# fewer requests in flight. benchmark (3 /api/io?ms=100 to 1 /api/cpu?ms=10, 1 CPU, 64 connections):
# gunicorn 3 x 4 threads 148 req/s; 3 x 16 300; 3 x 32 301-328; 3 x 64 294-316: the CPU is full
# from 16 on. 32 leaves room for mixes that wait longer.
MIXED_REQUESTS_PER_CPU = 32
# Fewest threads a threaded worker gets, however small its CPU share.
MIN_THREADS = 4

# Event loops per CPU for ASGI. One loop per CPU leaves the CPU idle while a loop waits on its
# thread pool (file reads for static files, sync endpoints, which FastAPI and Starlette run in
# threads). benchmark (FastAPI on uvicorn, 1 CPU, 64 connections, static files through the app),
# req/s for 1 / 2 / 3 / 4 workers: ServeStatic ~1110 / 1150 / 1330 / 1290; Starlette's
# StaticFiles ~860 / 1530 / 1140 / 1250; I/O, CPU and mixed alike for all four (noise ~10%).
# CPU-bound ASGI stays at one per CPU: its loops only compute, and each costs a worker's memory.
ASGI_WORKERS_PER_CPU = 2

# Sanity bounds for the limits: anything outside is a typo, not a machine.
MAX_CPUS = 1024.0
MAX_MEMORY_BYTES = 64 * 1024 * 1024 * MIB  # 64 TiB

# gunicorn's ASGI worker: the uvicorn-worker package or gunicorn's own `asgi`. One worker each,
# wrk side by side on this machine (req/s): /healthz, 16 connections: starlette 23209 vs 13596,
# fastapi 8236 vs 7634, django 665 vs 580; /api/io?ms=100, 64 connections: starlette 618 vs 615,
# fastapi 619 vs 613, django 282 vs 387. uvicorn-worker (uvloop + httptools) wins where the
# server's own cost shows; gunicorn's worker wins only Django's sleep-bound case.
GUNICORN_ASGI_WORKER = "uvicorn_worker.UvicornWorker"


class TuningError(ValueError):
    """A value the model cannot work with; the message names the field, the value and what fits."""

    def __init__(self, name: str, value: object, problem: str, accepted: str) -> None:
        self.name, self.value, self.problem, self.accepted = name, value, problem, accepted
        super().__init__(f"{name}: {value!r} {problem}; {accepted}")


@dataclass(frozen=True)
class Plan:
    framework: str
    interface: str
    server: str
    workload: str
    cpus: float
    memory_limit_bytes: int | None
    worker_class: str | None
    workers: int
    threads: int
    worker_memory_bytes: int
    memory_needed_bytes: int
    fits_memory: bool
    reasons: dict[str, str]
    limits: dict[str, dict] = field(default_factory=dict)

    def as_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


# --- parsing limits --------------------------------------------------------------------------

_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)(b?)\s*$", re.IGNORECASE)
_UNIT_POWER = {"": 2, "k": 1, "m": 2, "g": 3, "t": 4}  # a bare number means MiB


def parse_cpus(text: object, name: str = "cpu_limit") -> float:
    """Cores as a float: "2", "0.5", or Kubernetes' "500m". Never rounds 0.5 down to 0."""
    accepted = f"give cores as a number > 0 and <= {MAX_CPUS:g} (e.g. 0.5, 2 or 500m)"
    raw = str(text).strip()
    try:
        cpus = float(raw[:-1]) / 1000 if raw.lower().endswith("m") else float(raw)
    except ValueError:
        raise TuningError(name, text, "is not a number", accepted) from None
    if not math.isfinite(cpus) or cpus <= 0:
        raise TuningError(name, text, "is not a finite number > 0", accepted)
    if cpus > MAX_CPUS:
        raise TuningError(name, text, "is larger than any machine", accepted)
    return cpus


def parse_memory(text: object, name: str = "memory_limit") -> int:
    """Bytes from "512MiB", "2GiB", "1.5G", "768M" or a bare number of MiB.

    K, M, G and T are binary (1.5G = 1536 MiB), as Docker reads them.
    """
    accepted = "give a size such as 512MiB, 2GiB, 1.5G, 768M, or a number of MiB"
    match = _MEMORY.match(str(text))
    if not match:
        raise TuningError(name, text, "is not a memory size", accepted)
    number, unit, binary, byte = match.groups()
    if binary and not unit:
        raise TuningError(name, text, "is not a memory size", accepted)
    scale = 1 if byte and not unit and not binary else 1024 ** _UNIT_POWER[unit.lower()]  # "1024B": bytes
    bytes_ = float(number) * scale
    if bytes_ < 1:
        raise TuningError(name, text, "is not more than 0", accepted)
    if bytes_ > MAX_MEMORY_BYTES:
        raise TuningError(name, text, "is larger than any machine", accepted)
    return int(bytes_)


def format_memory(bytes_: int | None) -> str:
    if bytes_ is None:
        return "no limit"
    mib = bytes_ / MIB
    return f"{mib / 1024:g} GiB" if mib >= 1024 and mib % 128 == 0 else f"{mib:.0f} MiB"


def _choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise TuningError(name, value, "is not known", "choose one of " + ", ".join(choices))
    return value


# --- the model -------------------------------------------------------------------------------


def worker_class_for(server: str, interface: str, workload: str) -> tuple[str | None, str]:
    """The worker class where the server has one, and why."""
    if server == "gunicorn" and interface == "asgi":
        return GUNICORN_ASGI_WORKER, "uvicorn-worker: uvloop + httptools, up to 1.7x gunicorn's asgi worker"
    if server == "gunicorn" and workload == "cpu_bound":
        return "sync", "sync: CPU-bound requests gain nothing from threads sharing one GIL"
    if server == "gunicorn":
        return "gthread", "gthread: threads overlap the waits on I/O inside each worker"
    return None, f"{server} has one worker model for {interface.upper()}"


def uses_threads(interface: str, workload: str) -> bool:
    """Whether requests run on a pool of blocking threads (WSGI), not on an event loop."""
    return interface == "wsgi" and workload != "cpu_bound"


def plan(
    cpus: float,
    memory_limit_bytes: int | None,
    framework: str,
    interface: str,
    server: str,
    workload: str,
    *,
    worker_memory_bytes: int | None = None,
    workers_override: int | None = None,
    threads_override: int | None = None,
) -> Plan:
    """Workers and threads for one container. Pure: same inputs, same plan."""
    _choice("framework", framework, FRAMEWORKS)
    _choice("interface", interface, INTERFACES)
    _choice("server", server, SERVERS)
    _choice("workload", workload, WORKLOADS)
    if not (math.isfinite(cpus) and 0 < cpus <= MAX_CPUS):
        raise TuningError("cpus", cpus, "is out of range", f"a number > 0 and <= {MAX_CPUS:g}")
    reasons: dict[str, str] = {}
    worker_class, reasons["worker_class"] = worker_class_for(server, interface, workload)

    # Workers from the CPU. ceil() so that 0.5 CPU is one core's worth, never zero.
    if interface == "asgi" and workload == "cpu_bound":
        workers = math.ceil(cpus)
        reasons["workers"] = f"{workers} = one event loop per CPU (ceil {cpus:g}): the loops only compute"
    elif interface == "asgi":
        workers = math.ceil(ASGI_WORKERS_PER_CPU * cpus)
        reasons["workers"] = (
            f"{workers} = {ASGI_WORKERS_PER_CPU} event loops per CPU (ceil {ASGI_WORKERS_PER_CPU} x {cpus:g}):"
            " one runs while another waits on its thread pool"
        )
    elif workload == "cpu_bound":
        workers = math.ceil(cpus) + 1
        reasons["workers"] = f"{workers} = one per CPU (ceil {cpus:g}) + 1 to cover a worker's network writes"
    else:
        workers = math.ceil(2 * cpus) + 1
        reasons["workers"] = (
            f"{workers} = 2 x CPU + 1 (ceil 2 x {cpus:g} + 1): blocking workers wait as often as they compute"
        )

    # Each worker gets threads for all the requests in flight, not its fair share of them: a gthread
    # worker accepts connections while its threads are busy, and nginx keeps its upstream connections
    # alive, so one worker can hold most of them. benchmark (1 CPU, 64 connections, /api/io?ms=100):
    # 3 x 22 threads (66 in all) 455 req/s, p95 202 ms; 3 x 32 614 req/s, 3 x 64 616, p95 108 ms.
    if uses_threads(interface, workload):
        per_cpu = IO_BOUND_REQUESTS_PER_CPU if workload == "io_bound" else MIXED_REQUESTS_PER_CPU
        in_flight = math.ceil(per_cpu * cpus)
        threads = min(MAX_THREADS, max(MIN_THREADS, in_flight))
        waits = "wait most of the time" if workload == "io_bound" else "wait part of the time"
        capped = f" (capped from {in_flight})" if in_flight > MAX_THREADS else ""
        reasons["threads"] = (
            f"{threads} per worker{capped}: {per_cpu} requests in flight per CPU, as {workload.replace('_', '-')}"
            f" requests {waits}; each worker can hold them all, as connections do not spread evenly"
        )
    elif interface == "asgi":
        threads = 1
        reasons["threads"] = "1: an event loop runs many requests at once without threads"
    else:
        threads = 1
        reasons["threads"] = "1: CPU-bound requests run one at a time per GIL"

    if workers > MAX_WORKERS:
        reasons["workers"] = f"{MAX_WORKERS}: capped from {workers}; past that, add replicas"
        workers = MAX_WORKERS

    # Memory: every worker pays its own RSS (spawned workers share nothing), the server its own.
    per_worker = worker_memory_bytes or WORKER_MEMORY_MIB[framework] * MIB
    overhead = SERVER_MEMORY_MIB[server] * MIB
    fits_memory = True
    if memory_limit_bytes is not None:
        budget = memory_limit_bytes * (1 - MEMORY_HEADROOM) - overhead
        fitting = int(budget // per_worker)
        if fitting < 1:
            fits_memory = False
            reasons["workers"] = (
                f"1: the memory limit {format_memory(memory_limit_bytes)} is below one worker"
                f" ({format_memory(per_worker)} + {format_memory(overhead)} for {server}"
                f" + {MEMORY_HEADROOM:.0%} headroom); expect OOM kills"
            )
            workers = 1
        elif fitting < workers:
            wanted = workers
            workers = fitting
            reasons["workers"] = (
                f"{workers}: memory-capped from {wanted}; {format_memory(memory_limit_bytes)} less"
                f" {MEMORY_HEADROOM:.0%} headroom and {format_memory(overhead)} for {server}"
                f" fits {fitting} x {format_memory(per_worker)}"
            )

    if workers_override is not None:
        over = (
            ""
            if fits_memory and workers_override * per_worker <= (memory_limit_bytes or math.inf)
            else ("; more than the memory limit fits, expect OOM kills")
        )
        reasons["workers"] = f"{workers_override}: set by WEB_CONCURRENCY (the model said {workers}){over}"
        workers = workers_override
    if threads_override is not None:
        reasons["threads"] = f"{threads_override}: set by WEB_THREADS (the model said {threads})"
        threads = threads_override
        if worker_class == "sync" and threads > 1:
            worker_class = "gthread"
            reasons["worker_class"] = "gthread: WEB_THREADS asks for threads, which sync workers lack"

    needed = overhead + workers * per_worker
    return Plan(
        framework=framework,
        interface=interface,
        server=server,
        workload=workload,
        cpus=cpus,
        memory_limit_bytes=memory_limit_bytes,
        worker_class=worker_class,
        workers=workers,
        threads=threads,
        worker_memory_bytes=per_worker,
        memory_needed_bytes=needed,
        fits_memory=fits_memory,
        reasons=reasons,
    )


def minimum_memory_bytes(framework: str, server: str, worker_memory_bytes: int | None = None) -> int:
    """The smallest memory limit that fits one worker, the server and the headroom."""
    per_worker = worker_memory_bytes or WORKER_MEMORY_MIB[framework] * MIB
    return math.ceil((per_worker + SERVER_MEMORY_MIB[server] * MIB) / (1 - MEMORY_HEADROOM))


# --- the container's real limits ------------------------------------------------------------
# Containers lie to os.cpu_count(): it counts the host's cores and ignores the CPU quota. The truth
# is in this process's cgroup, found through /proc/self/cgroup and /proc/self/mountinfo, so that a
# container (where the own cgroup is the root) and a nested cgroup on a host both read right.

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC = Path("/proc")
# cgroup v1 writes "no memory limit" as the largest page-aligned counter (9223372036854771712 with
# 4 KiB pages, other values with other page sizes): anything past 2^62 bytes is no limit.
V1_NO_LIMIT = 2**62
CONTROLLERS = ("cpu", "cpuset", "memory")
# Where the CPU time a cgroup used is counted: in cgroup v1 its own controller (deploy/confine.py
# reads it to report CPU time per request); in v2, cpu.stat of the cpu controller.
ACCOUNTING = "cpuacct"


@dataclass(frozen=True)
class Found:
    """One limit read from the system or the environment.

    kind "limit": set for this container (a cgroup quota or memory limit, CPU_LIMIT, MEMORY_LIMIT);
    kind "ceiling": what the process can use anyway (cpuset, CPU affinity, the machine's memory).
    """

    resource: str  # "cpus" or "memory"
    value: float  # cores or bytes
    source: str
    kind: str = "limit"


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
    return {name: v1.get(name) or v2 for name in controllers if v1.get(name) or v2}


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
            quotas.append(Found("cpus", int(quota) / int(period), f"cgroup v{cgroup.version} {name} in {directory}"))
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


def choose_limit(resource: str, found: list[Found], answer: Found | None) -> tuple[float | None, str]:
    """The limit the plan uses, and where from: the smallest limit set for this container; the
    generation-time answer when none is (a laptop, a VM, a pod without limits), since nothing else
    says how much of the machine the service should plan on; never more than a ceiling.
    """
    mine = [item for item in found if item.resource == resource]
    limits = [item for item in mine if item.kind == "limit"] or ([answer] if answer else [])
    ceilings = [item for item in mine if item.kind == "ceiling"]
    chosen = min(limits, key=lambda item: item.value, default=None)
    ceiling = min(ceilings, key=lambda item: item.value, default=None)
    if ceiling is not None and (chosen is None or ceiling.value < chosen.value):
        chosen = ceiling
    return (chosen.value, chosen.source) if chosen else (None, "none")


# --- the environment -------------------------------------------------------------------------

STACK_FILE = Path(__file__).with_name("stack.toml")


def load_stack(path: Path = STACK_FILE) -> dict[str, str]:
    """The answers the project was generated with (deploy/stack.toml)."""
    import tomllib

    with path.open("rb") as handle:
        data = tomllib.load(handle)
    return {**data["stack"], **{f"{key}_limit": str(value) for key, value in data["limits"].items()}}


def _positive_int(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise TuningError(name, raw, "is not a whole number >= 1", "unset it or give e.g. 4")
    return int(raw)


def limits_from_environment(env: Mapping[str, str]) -> list[Found]:
    """CPU_LIMIT (or CPU_LIMIT_MILLICORES) and MEMORY_LIMIT: the limits an orchestrator passes in."""
    found = []
    if env.get("CPU_LIMIT", "").strip():
        found.append(Found("cpus", parse_cpus(env["CPU_LIMIT"], "CPU_LIMIT"), "CPU_LIMIT"))
    millicores = _positive_int(env, "CPU_LIMIT_MILLICORES")
    if millicores is not None:
        cpus = parse_cpus(f"{millicores}m", "CPU_LIMIT_MILLICORES")
        found.append(Found("cpus", cpus, "CPU_LIMIT_MILLICORES"))
    if env.get("MEMORY_LIMIT", "").strip():
        found.append(Found("memory", parse_memory(env["MEMORY_LIMIT"], "MEMORY_LIMIT"), "MEMORY_LIMIT"))
    return found


def plan_from_environment(
    env: Mapping[str, str], stack: Mapping[str, str], system: list[Found] | tuple[Found, ...] = ()
) -> Plan:
    """The plan from the answers (stack), the environment and the limits read from the system."""
    found = [*system, *limits_from_environment(env)]
    cpu_answer = Found("cpus", parse_cpus(stack["cpu_limit"]), "stack.toml (the answer at generation)")
    memory_answer = (
        Found("memory", parse_memory(stack["memory_limit"]), "stack.toml (the answer at generation)")
        if stack.get("memory_limit")
        else None
    )
    cpus, cpus_from = choose_limit("cpus", found, cpu_answer)
    memory, memory_from = choose_limit("memory", found, memory_answer)
    limits = {
        "cpus": {"from": cpus_from, "found": {item.source: item.value for item in found if item.resource == "cpus"}},
        "memory": {
            "from": memory_from,
            "found": {item.source: int(item.value) for item in found if item.resource == "memory"},
        },
    }
    for resource, answer in (("cpus", cpu_answer), ("memory", memory_answer)):
        if answer is not None:
            limits[resource]["found"].setdefault(answer.source, answer.value)
    worker_memory = None
    if env.get("WORKER_MEMORY", "").strip():
        worker_memory = parse_memory(env["WORKER_MEMORY"], "WORKER_MEMORY")
    result = plan(
        float(cpus or cpu_answer.value),
        int(memory) if memory else None,
        stack["framework"],
        stack["interface"],
        stack["server"],
        stack["workload"],
        worker_memory_bytes=worker_memory,
        workers_override=_positive_int(env, "WEB_CONCURRENCY"),
        threads_override=_positive_int(env, "WEB_THREADS"),
    )
    return Plan(**{**asdict(result), "limits": limits})


def start_up_plan(cgroup_root: Path | None = None) -> Plan:
    """The plan for this container, now: what every server's start-up calls."""
    return plan_from_environment(os.environ, load_stack(), read_system_limits(cgroup_root))


def describe(p: Plan) -> str:
    """The plan as a few lines a person reads at start-up or generation time."""
    kind = f" ({p.worker_class})" if p.worker_class else ""
    lines = [
        f"{p.server}{kind} for {p.framework} over {p.interface.upper()}, {p.workload} workload",
        f"limits: {p.cpus:g} CPU, {format_memory(p.memory_limit_bytes)}",
    ]
    for resource, limit in p.limits.items():
        if list(limit["found"]) == [limit["from"]]:
            continue  # only the answers: nothing to compare them with
        lines.append(f"  {resource:<8} from {limit['from']}")
        for source, value in limit["found"].items():
            shown = format_memory(int(value)) if resource == "memory" else f"{value:g}"
            lines.append(f"             {shown:>9}  {source}")
    return "\n".join(
        [
            *lines,
            f"workers x threads: {p.workers} x {p.threads}",
            f"  workers  {p.reasons['workers']}",
            f"  threads  {p.reasons['threads']}",
            f"  memory   about {format_memory(p.memory_needed_bytes)} planned"
            f" ({p.workers} x {format_memory(p.worker_memory_bytes)} + the server)",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print this service's worker and thread plan.")
    parser.add_argument("--json", action="store_true", help="one JSON line, as the server logs it")
    parser.add_argument("--stack", type=Path, default=STACK_FILE, help="the answers file (deploy/stack.toml)")
    parser.add_argument(
        "--cgroup-root",
        type=Path,
        metavar="DIR",
        help="read DIR as if it were /sys/fs/cgroup, with this process in its root cgroup",
    )
    parser.add_argument("--answers-only", action="store_true", help="ignore this machine: the plan from the answers")
    args = parser.parse_args(argv)
    try:
        system = [] if args.answers_only else read_system_limits(args.cgroup_root)
        result = plan_from_environment(os.environ, load_stack(args.stack), system)
    except (TuningError, OSError, KeyError) as error:
        print(f"tuning: {error}", file=sys.stderr)
        return 2
    print(result.as_json() if args.json else describe(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
