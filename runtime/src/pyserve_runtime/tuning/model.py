"""The tuning model: a container's limits and the answers in, workers and threads out, with why.

Pure Python, no I/O and no dependencies: the same inputs give the same plan. The template runs this
very file when it generates the project (to print the plan and write it into the README);
tuning/machine.py reads the container's limits and calls it at start-up.

The measurements behind each number: https://github.com/org/pyserve-template/blob/main/docs/decisions.md.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from ..migrations import CONNECTIONS as MIGRATION_CONNECTIONS
from ..settings import DEPLOY_SURGE
from ..values import (
    MAX_CPUS,
    TuningError,
    format_memory,
)

INTERFACES = ("asgi", "wsgi")
WORKLOADS = ("io_bound", "mixed", "cpu_bound")

# Part of the limit no worker may plan on: page cache, heap growth between worker recycles, and a
# burst of large request bodies. The kernel OOM-kills at the limit, not near it.
MEMORY_HEADROOM = 0.20

# A thread costs little memory, but every in-flight request holds the GIL for its CPU part, so
# threads are bounded by that (https://github.com/org/pyserve-template/blob/main/docs/decisions.md#a-thread-is-cheap-in-memory).
MAX_THREADS = 64

# Past this, one container is better split into replicas: every worker holds its own database
# pool and warm caches, and one host's accept queue is a single point of failure.
MAX_WORKERS = 32

# Requests in flight per CPU that an I/O-bound WSGI service needs (Little's law): one that spends
# 1/64 of its time on the CPU saturates a core at 64 in flight
# (https://github.com/org/pyserve-template/blob/main/docs/decisions.md#threads-for-io-bound-wsgi-64-requests-in-flight-per-cpu).
IO_BOUND_REQUESTS_PER_CPU = 64
# A mixed workload spends a real part of each request on the CPU, so it saturates the CPU with
# fewer requests in flight (https://github.com/org/pyserve-template/blob/main/docs/decisions.md#threads-for-a-mixed-workload-32-per-cpu).
MIXED_REQUESTS_PER_CPU = 32
# Requests in flight per CPU at which each workload saturates a core (a CPU-bound request holds it alone).
SATURATING_IN_FLIGHT_PER_CPU = {"io_bound": IO_BOUND_REQUESTS_PER_CPU, "mixed": MIXED_REQUESTS_PER_CPU, "cpu_bound": 1}
# The share of its capacity (and of its CPU request) at which the autoscaler adds a pod: the rest is
# room for the load to grow while the new pod starts and becomes ready.
AUTOSCALE_AT = 0.7
# Fewest threads a threaded worker gets, however small its CPU share.
MIN_THREADS = 4

# Event loops per CPU for ASGI: one per CPU leaves the CPU idle while a loop waits on its thread
# pool; CPU-bound ASGI stays at one (https://github.com/org/pyserve-template/blob/main/docs/decisions.md#two-event-loops-per-cpu-for-asgi).
ASGI_WORKERS_PER_CPU = 2

# WebSockets and event streams an ASGI container plans for unless WS_CONNECTIONS says otherwise:
# each costs memory in the server and a descriptor in a worker and in nginx (deploy/stack.toml).
DEFAULT_LONG_LIVED_CONNECTIONS = 1000
# gunicorn's ASGI worker: the uvicorn-worker package, ahead of gunicorn's own `asgi` wherever the
# server's own cost shows (https://github.com/org/pyserve-template/blob/main/docs/decisions.md#gunicorns-asgi-worker-uvicorn-worker).
GUNICORN_ASGI_WORKER = "uvicorn_worker.UvicornWorker"

# Without a database budget, a worker's pool grows to a connection for each request it has in
# flight: its threads (WSGI), or for an event loop as many as a threaded worker would hold at most.
# That is what a service does when nothing sizes its pool, and what runs PostgreSQL out of
# connections once workers x replicas grow: give DB_MAX_CONNECTIONS.
UNBUDGETED_EVENT_LOOP_POOL = MAX_THREADS

# The release step (`pyserve migrate`) connects while the version before it still holds its pools:
# the budget keeps its connections out of theirs (pyserve_runtime/migrations says what it holds).
RELEASE_STEP_CONNECTIONS = MIGRATION_CONNECTIONS

# Open files a worker needs beside its long-lived connections: the sockets of its requests in
# flight, the app's files and libraries. 1024 is also the soft limit most systems start a process with.
BASE_OPEN_FILES = 1024


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
    limits: dict[str, dict[str, Any]] = field(default_factory=dict)
    # With a database: connections each worker's pool may hold, the most replicas that run at once,
    # and the budget they share (None: none given). Without one, all None.
    db_pool_size: int | None = None
    max_replicas: int | None = None
    db_max_connections: int | None = None
    # WebSockets and event streams expected open at once in this container (ASGI; 0 on WSGI).
    long_lived_connections: int = 0

    @property
    def planned_in_flight(self) -> int:
        """Requests in flight this container is sized for: as many as saturate its CPU. A WSGI worker
        has threads for all of them, as connections do not spread evenly over the workers, so the
        threads past this are headroom against that, not capacity: on a busy machine a ramp on
        3 x 64 threads slowed down at 0.8 of 192 in flight (tests/test_autoscaling.py)."""
        return max(1, math.ceil(SATURATING_IN_FLIGHT_PER_CPU[self.workload] * self.cpus))

    @property
    def autoscale_in_flight(self) -> int:
        """Requests in flight per pod past which the autoscaler adds one: AUTOSCALE_AT of the planned."""
        return max(1, math.floor(AUTOSCALE_AT * self.planned_in_flight))

    @property
    def open_files_per_worker(self) -> int:
        """Descriptors one worker may need: every long-lived connection can land on the same worker
        (nginx's connections do not spread evenly), and its ordinary ones beside them."""
        return BASE_OPEN_FILES + self.long_lived_connections

    @property
    def db_connections_per_container(self) -> int | None:
        return None if self.db_pool_size is None else self.workers * self.db_pool_size

    @property
    def db_connections_during_deploy(self) -> int | None:
        """What the pools may hold at most: max_replicas, and a deploy's new ones beside them."""
        per_container = self.db_connections_per_container
        if per_container is None or self.max_replicas is None:
            return None
        return per_container * (self.max_replicas + DEPLOY_SURGE)

    def as_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass(frozen=True)
class Found:
    """One limit read from the system or the environment.

    kind "quota": the cgroup's CPU quota, which the kernel enforces;
    kind "limit": set for this container (a cgroup memory limit, CPU_LIMIT, MEMORY_LIMIT);
    kind "reported": the Downward API's limits.cpu (CPU_LIMIT_MILLICORES), a limit only where a quota shows one was set;
    kind "request": the CPU the scheduler reserved (CPU_REQUEST_MILLICORES), planned on when no limit is set;
    kind "ceiling": what the process can use anyway (cpuset, CPU affinity, the machine's memory).
    """

    resource: str  # "cpus" or "memory"
    value: float  # cores or bytes
    source: str
    kind: str = "limit"


@dataclass(frozen=True)
class Database:
    """What the service may hold of its database, all replicas together.

    max_connections None: no budget was given. `named` is what the refusal names (the answer at
    generation, the environment variable at start-up).
    """

    max_connections: int | None
    max_replicas: int = 1
    named: str = "db_max_connections"


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


def workers_for_cpus(cpus: float, interface: str, workload: str) -> tuple[int, str]:
    """Workers from the CPU, and why. ceil() so that 0.5 CPU is one core's worth, never zero."""
    if interface == "asgi" and workload == "cpu_bound":
        workers = math.ceil(cpus)
        return workers, f"{workers} = one event loop per CPU (ceil {cpus:g}): the loops only compute"
    if interface == "asgi":
        workers = math.ceil(ASGI_WORKERS_PER_CPU * cpus)
        return workers, (
            f"{workers} = {ASGI_WORKERS_PER_CPU} event loops per CPU (ceil {ASGI_WORKERS_PER_CPU} x {cpus:g}):"
            " one runs while another waits on its thread pool"
        )
    if workload == "cpu_bound":
        workers = math.ceil(cpus) + 1
        return workers, f"{workers} = one per CPU (ceil {cpus:g}) + 1 to cover a worker's network writes"
    workers = math.ceil(2 * cpus) + 1
    return workers, f"{workers} = 2 x CPU + 1 (ceil 2 x {cpus:g} + 1): blocking workers wait as often as they compute"


def threads_per_worker(cpus: float, interface: str, workload: str) -> tuple[int, str]:
    """Threads per worker, and why.

    Each worker gets threads for all the requests in flight, not its fair share of them: a gthread
    worker accepts connections while its threads are busy, and nginx keeps its upstream connections
    alive, so one worker can hold most of them
    (https://github.com/org/pyserve-template/blob/main/docs/decisions.md#each-worker-gets-threads-for-every-request-in-flight).
    """
    if uses_threads(interface, workload):
        per_cpu = IO_BOUND_REQUESTS_PER_CPU if workload == "io_bound" else MIXED_REQUESTS_PER_CPU
        in_flight = math.ceil(per_cpu * cpus)
        threads = min(MAX_THREADS, max(MIN_THREADS, in_flight))
        waits = "wait most of the time" if workload == "io_bound" else "wait part of the time"
        capped = f" (capped from {in_flight})" if in_flight > MAX_THREADS else ""
        return threads, (
            f"{threads} per worker{capped}: {per_cpu} requests in flight per CPU, as {workload.replace('_', '-')}"
            f" requests {waits}; each worker can hold them all, as connections do not spread evenly"
        )
    if interface == "asgi":
        return 1, "1: an event loop runs many requests at once without threads"
    return 1, "1: CPU-bound requests run one at a time per GIL"


def workers_that_fit(
    workers: int, memory_limit_bytes: int | None, per_worker: int, overhead: int, server: str
) -> tuple[int, str | None, bool]:
    """Workers within the memory limit: (workers, why if fewer, whether even one fits).

    Every worker pays its own RSS (spawned workers share nothing), `server` (what runs beside the
    workers, and the long-lived connections) its `overhead`.
    """
    if memory_limit_bytes is None:
        return workers, None, True
    budget = memory_limit_bytes * (1 - MEMORY_HEADROOM) - overhead
    fitting = int(budget // per_worker)
    if fitting < 1:
        below = (
            f"1: the memory limit {format_memory(memory_limit_bytes)} is below one worker"
            f" ({format_memory(per_worker)} + {format_memory(overhead)} for {server}"
            f" + {MEMORY_HEADROOM:.0%} headroom); expect OOM kills"
        )
        return 1, below, False
    if fitting < workers:
        capped = (
            f"{fitting}: memory-capped from {workers}; {format_memory(memory_limit_bytes)} less"
            f" {MEMORY_HEADROOM:.0%} headroom and {format_memory(overhead)} for {server}"
            f" fits {fitting} x {format_memory(per_worker)}"
        )
        return fitting, capped, True
    return workers, None, True


def _replicas(count: int) -> str:
    return f"{count} replica" + ("" if count == 1 else "s")


def _during_deploy(replicas: int) -> str:
    return f"{_replicas(replicas + DEPLOY_SURGE)} ({replicas} and a deploy's {DEPLOY_SURGE} more)"


def fit_database(workers: int, threads: int, interface: str, database: Database) -> tuple[int, int, dict[str, str]]:
    """Each worker's pool within the budget: (pool, threads, reasons that change).

    (replicas + a deploy's surge) x workers x pool + the release step's connections <= DB_MAX_CONNECTIONS:
    a deploy starts its new replicas (DEPLOY_SURGE) while the old ones still hold their pools, and
    the release step (`pyserve migrate`) runs while the version before it still serves. A WSGI thread
    holds one connection at most, so a worker never needs more than its threads. Requests past the
    pool wait in its queue for a connection (the concurrency limit in front of it), up to the request
    timeout, on a thread (WSGI) or a coroutine (ASGI). The threads stay as many as the requests in
    flight: capped to the pool, they lost up to a third of the throughput, as nginx's connections do
    not spread evenly over the workers and a worker with more requests than threads queued them while
    another's connections sat idle (https://github.com/org/pyserve-template/blob/main/docs/decisions.md#pools-are-capped-by-the-budget-threads-are-not).
    """
    wanted = threads if interface == "wsgi" else UNBUDGETED_EVENT_LOOP_POOL
    replicas = database.max_replicas
    at_once = replicas + DEPLOY_SURGE
    if database.max_connections is None:
        reason = (
            f"{wanted} connections per worker, one for each request in flight: no budget given"
            f" ({workers * wanted} per container, {workers * wanted * at_once} at {_during_deploy(replicas)})"
        )
        return wanted, threads, {"database": reason}
    for_pools = database.max_connections - RELEASE_STEP_CONNECTIONS
    per_container = max(for_pools, 0) // at_once
    if per_container < workers:
        raise TuningError(
            database.named,
            str(database.max_connections),
            f"leaves {per_container} connection{'' if per_container == 1 else 's'} per container"
            f" for {workers} workers at {_during_deploy(replicas)}"
            f" once the release step has its {RELEASE_STEP_CONNECTIONS}",
            f"give at least {workers * at_once + RELEASE_STEP_CONNECTIONS} (one a worker, and the step's),"
            " or fewer replicas or CPUs",
        )
    pool = min(wanted, per_container // workers)
    split = (
        f"{database.max_connections} less the release step's {RELEASE_STEP_CONNECTIONS}"
        f" over {_during_deploy(replicas)} x {workers} workers"
    )
    reasons = {
        "database": f"{pool} connections per worker: {split}"
        f" ({workers * pool} per container, {workers * pool * at_once} at {_during_deploy(replicas)})"
    }
    if pool < wanted:
        reasons["database"] += ": requests past the pool wait for a connection"
    return pool, threads, reasons


def fit_long_lived(
    connections: int, interface: str, server: str, connection_memory_bytes: int
) -> tuple[int, str | None]:
    """Memory for the long-lived connections, and the reason line (none without any)."""
    if connections and interface != "asgi":
        raise TuningError(
            "WS_CONNECTIONS",
            str(connections),
            "is more than 0 on a WSGI stack",
            "WSGI has no WebSockets: unset it or give 0",
        )
    memory = connections * connection_memory_bytes
    if not connections:
        return 0, None
    return memory, (
        f"{connections} WebSockets and event streams at once (WS_CONNECTIONS): about {format_memory(memory)}"
        f" ({connection_memory_bytes // 1024} KiB each in {server}), and up to {BASE_OPEN_FILES + connections}"
        " open files a worker, as one worker may hold them all"
    )


def plan(
    cpus: float,
    memory_limit_bytes: int | None,
    framework: str,
    interface: str,
    server: str,
    workload: str,
    *,
    worker_memory_bytes: int,
    server_memory_bytes: int,
    workers_override: int | None = None,
    threads_override: int | None = None,
    database: Database | None = None,
    long_lived_connections: int = 0,
    connection_memory_bytes: int = 0,
) -> Plan:
    """Workers and threads for one container. Pure: same inputs, same plan.

    worker_memory_bytes is one worker's memory (the framework's measured figure, or your app's
    WORKER_MEMORY), server_memory_bytes what the server runs beside its workers; `database`, where
    the service has one, the connections it may hold; long_lived_connections the WebSockets and
    event streams expected open at once, each costing connection_memory_bytes in the server.
    """
    _choice("interface", interface, INTERFACES)
    _choice("workload", workload, WORKLOADS)
    if not (math.isfinite(cpus) and 0 < cpus <= MAX_CPUS):
        raise TuningError("cpus", cpus, "is out of range", f"a number > 0 and <= {MAX_CPUS:g}")
    reasons: dict[str, str] = {}
    worker_class, reasons["worker_class"] = worker_class_for(server, interface, workload)
    workers, reasons["workers"] = workers_for_cpus(cpus, interface, workload)
    threads, reasons["threads"] = threads_per_worker(cpus, interface, workload)
    if workers > MAX_WORKERS:
        workers, reasons["workers"] = MAX_WORKERS, f"{MAX_WORKERS}: capped from {workers}; past that, add replicas"
    per_worker = worker_memory_bytes
    connections_memory, connections_reason = fit_long_lived(
        long_lived_connections, interface, server, connection_memory_bytes
    )
    if connections_reason:
        reasons["connections"] = connections_reason
    beside = f"{server} and its open connections" if connections_memory else server
    workers, memory_capped, fits_memory = workers_that_fit(
        workers, memory_limit_bytes, per_worker, server_memory_bytes + connections_memory, beside
    )
    reasons["workers"] = memory_capped or reasons["workers"]

    if workers_override is not None:
        over = (
            ""
            if fits_memory and workers_override * per_worker <= (memory_limit_bytes or math.inf)
            else ("; more than the memory limit fits, expect OOM kills")
        )
        reasons["workers"] = f"{workers_override}: set by WEB_CONCURRENCY (the model said {workers}){over}"
        workers = workers_override
    pool = None
    if database is not None:
        pool, threads, changed = fit_database(workers, threads, interface, database)
        reasons.update(changed)
    if threads_override is not None:
        waits = "; requests past the pool wait for a connection" if pool is not None and threads_override > pool else ""
        reasons["threads"] = f"{threads_override}: set by WEB_THREADS (the model said {threads}){waits}"
        threads = threads_override
        if worker_class == "sync" and threads > 1:
            worker_class = "gthread"
            reasons["worker_class"] = "gthread: WEB_THREADS asks for threads, which sync workers lack"

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
        memory_needed_bytes=server_memory_bytes + connections_memory + workers * per_worker,
        fits_memory=fits_memory,
        reasons=reasons,
        db_pool_size=pool,
        max_replicas=database.max_replicas if database else None,
        db_max_connections=database.max_connections if database else None,
        long_lived_connections=long_lived_connections,
    )


def minimum_memory_bytes(worker_memory_bytes: int, server_memory_bytes: int) -> int:
    """The smallest memory limit that fits one worker, the server and the headroom."""
    return math.ceil((worker_memory_bytes + server_memory_bytes) / (1 - MEMORY_HEADROOM))
