"""Who runs the app server in the benchmark: the generated configuration and what it is up against.

Each contender is the command line a project ships, run in the same cgroup (the container's CPU
quota and memory limit) behind the same generated nginx, so that only the app server's setup
differs. The commands are the ones people copy, defaults and all (uvicorn's access log included).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass

from .workloads import DB_BUDGET


@dataclass(frozen=True)
class Limits:
    """The modelled container: its CPU quota, and the host's CPU count that os.cpu_count() reports."""

    cpus: float
    memory: str
    host_cpus: int


@dataclass(frozen=True)
class Launch:
    argv: list[str]  # after the venv's python
    env: dict[str, str]


@dataclass(frozen=True)
class Contender:
    name: str  # as given to --contenders
    title: str  # as the report shows it
    source: str  # where this setup comes from, for the report
    launch: Callable[[str, str, str, Limits], Launch]  # (interface, app module, bind, limits)
    database_only: bool = False  # a way to size the database's pools: for the database workload alone
    interfaces: tuple[str, ...] = ("wsgi", "asgi")  # the stacks it means something on
    # A variant of the generated setup, measured beside it on every stack of these servers (the
    # benchmark's servers part) rather than against the articles and popular templates.
    variant_of: tuple[str, ...] = ()
    # Runs pyserve serve, the project's own start (any server); else a command line of its own, for
    # COMMAND_LINE_SERVER.
    own_command: bool = False

    def server(self, interface: str, generated_server: str) -> str:
        """The server this contender runs: the project's, or the one its command line names."""
        return COMMAND_LINE_SERVER[interface] if self.own_command else generated_server

    def describe(self, interface: str, limits: Limits) -> str:
        """The command line, as a reader would type it (the generated one is `pyserve serve`)."""
        launched = self.launch(interface, "APP", "127.0.0.1:8000", limits)
        env = " ".join(f"{name}={value}" for name, value in launched.env.items() if name != "BIND")
        argv = " ".join(launched.argv).removeprefix("-m ")
        return f"{env} {argv}".strip()


# The server the others' command lines run, whatever `auto` picks: what people copy.
COMMAND_LINE_SERVER = {"wsgi": "gunicorn", "asgi": "uvicorn"}


def _server(interface: str, module: str, bind: str, workers: int | None, threads: int | None = None) -> list[str]:
    """gunicorn for WSGI, uvicorn for ASGI, with only the flags given: everything else at its default."""
    if interface == "wsgi":
        flags = [*(["--workers", str(workers)] if workers else []), *(["--threads", str(threads)] if threads else [])]
        return ["-m", "gunicorn", "--bind", bind, *flags, module]
    host, _, port = bind.rpartition(":")
    return ["-m", "uvicorn", "--host", host, "--port", port, *(["--workers", str(workers)] if workers else []), module]


def generated(interface: str, module: str, bind: str, limits: Limits) -> Launch:
    # What the Dockerfile runs: the plan comes from the cgroup, as in the container.
    return Launch(["-m", "pyserve_runtime", "serve"], {"APP_MODULE": module, "BIND": bind})


def threads_capped_to_the_pool(interface: str, module: str, bind: str, limits: Limits) -> Launch:
    # The generated pools, and no more threads than connections (WSGI): no thread waits for one.
    # The workers are the model's for I/O-bound WSGI, 2 x CPU + 1, which share the budget.
    pool = DB_BUDGET // (math.ceil(2 * limits.cpus) + 1)
    return Launch(["-m", "pyserve_runtime", "serve"], {"APP_MODULE": module, "BIND": bind, "WEB_THREADS": str(pool)})


def pool_per_thread(interface: str, module: str, bind: str, limits: Limits) -> Launch:
    # No budget: each worker's pool grows to a connection per request in flight, as a thread-local
    # connection (Django's CONN_MAX_AGE) or a pool sized to the threads would.
    return Launch(
        ["-m", "pyserve_runtime", "serve"], {"APP_MODULE": module, "BIND": bind, "DB_MAX_CONNECTIONS": "none"}
    )


def preloaded(interface: str, module: str, bind: str, limits: Limits) -> Launch:
    # gunicorn imports the app once in its master and forks the workers from it: they share those
    # pages until they write to them. GUNICORN_CMD_ARGS overrides gunicorn.conf.py.
    return Launch(
        ["-m", "pyserve_runtime", "serve"], {"APP_MODULE": module, "BIND": bind, "GUNICORN_CMD_ARGS": "--preload"}
    )


def worker_per_cpu(interface: str, module: str, bind: str, limits: Limits) -> Launch:
    # One worker per CPU, each with the plan's threads: granian's workers run their I/O on Rust
    # threads of their own, so fewer Python workers may do.
    workers = str(math.ceil(limits.cpus))
    return Launch(["-m", "pyserve_runtime", "serve"], {"APP_MODULE": module, "BIND": bind, "WEB_CONCURRENCY": workers})


def bare_defaults(interface: str, module: str, bind: str, limits: Limits) -> Launch:
    return Launch(_server(interface, module, bind, None), {})


def articles(interface: str, module: str, bind: str, limits: Limits) -> Launch:
    # 2 x CPU + 1 workers x 2 threads; an event loop has no threads to give.
    workers = math.ceil(2 * limits.cpus) + 1
    return Launch(_server(interface, module, bind, workers, 2 if interface == "wsgi" else None), {})


def fixed_four(interface: str, module: str, bind: str, limits: Limits) -> Launch:
    if interface == "wsgi":  # gunicorn reads WEB_CONCURRENCY as its default worker count (sync workers)
        return Launch(_server(interface, module, bind, None), {"WEB_CONCURRENCY": "4"})
    return Launch(_server(interface, module, bind, 4), {})


def host_cpu_count(interface: str, module: str, bind: str, limits: Limits) -> Launch:
    # workers = multiprocessing.cpu_count(): the host's cores, whatever the quota says.
    return Launch(_server(interface, module, bind, limits.host_cpus), {})


CONTENDERS = {
    contender.name: contender
    for contender in (
        Contender("generated", "generated", "this template: pyserve serve sizes itself from the cgroup", generated),
        Contender(
            "bare", "bare defaults", "the server with no settings: one worker (the lemonade stand)", bare_defaults,
            own_command=True,
        ),
        Contender(
            "articles", "articles", "the articles' advice: 2 x CPU + 1 workers x 2 threads", articles, own_command=True
        ),
        Contender(
            "fixed4", "fixed 4", "popular templates: WEB_CONCURRENCY=4 sync gunicorn, uvicorn --workers 4", fixed_four,
            own_command=True,
        ),
        Contender(
            "cpu_count", "cpu_count()", "popular templates: workers = cpu_count(), blind to the quota", host_cpu_count,
            own_command=True,
        ),
        Contender(
            "preload", "generated + preload", "the generated setup with gunicorn's preload_app: the app imported"
            " once, before the workers fork", preloaded, variant_of=("gunicorn",),
            interfaces=("wsgi",),
        ),
        Contender(
            "worker_per_cpu", "generated, 1 worker/CPU", "the generated setup with one worker per CPU"
            " (WEB_CONCURRENCY)", worker_per_cpu, variant_of=("granian",),
        ),
        Contender(
            "capped", "threads = pool", "the generated pools, and threads capped to them (WEB_THREADS = the"
            " pool): no thread waits for a connection", threads_capped_to_the_pool, database_only=True,
            interfaces=("wsgi",),
        ),
        Contender(
            "pool_per_thread", "pool per thread", "no budget: a connection for each request in flight"
            " (DB_MAX_CONNECTIONS=none)", pool_per_thread, database_only=True,
        ),
    )
}  # fmt: skip


def default_limits(cpus: float, memory: str, host_cpus: int | None = None) -> Limits:
    return Limits(cpus, memory, host_cpus or os.cpu_count() or 1)
