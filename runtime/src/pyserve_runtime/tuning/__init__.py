"""How many workers and threads this service runs, and why.

    pyserve plan            # the plan for this machine or container, explained
    pyserve plan --json     # the same as one JSON line (what the server logs at start)
    pyserve plan --cgroup-root DIR   # as if DIR were /sys/fs/cgroup

model.py is the model: limits and answers in, the plan out, nothing read from anywhere.
machine.py reads the limits: the cgroup's CPU quota and memory limit (v1 or v2, this cgroup or a
parent), CPU_LIMIT / MEMORY_LIMIT from the environment and, where none is set, the answers in
deploy/stack.toml; never more than the CPUs the process may run on or the machine's memory.
Fractions stay: 1.5 CPU is 1.5.

Environment, strongest first:
    WEB_CONCURRENCY, WEB_THREADS   workers and threads, taken as given
    WORKER_MEMORY                  your app's measured memory per worker (e.g. 180MiB)
    CPU_LIMIT, MEMORY_LIMIT        the container's limits, as an orchestrator passes them in
    CPU_LIMIT_MILLICORES           the CPU limit as a whole number of millicores (the Downward API's
                                   limits.cpu with divisor 1m, which a bare CPU_LIMIT would read as cores)
"""

from ..values import TuningError
from .machine import start_up_plan
from .model import Plan

__all__ = ["Plan", "TuningError", "start_up_plan"]
