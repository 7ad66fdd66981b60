"""The Prometheus endpoint: `python -m pyserve_runtime.metrics_server`, started by serve.py beside the server.

It serves http://<BIND's host>:METRICS_PORT/metrics, on a port of its own that nginx never proxies:
what the workers recorded (metrics.py, added up over their files in PROMETHEUS_MULTIPROC_DIR)
and the plan they were started with, as gauges:

  app_plan_workers, app_plan_threads      what tuning/ chose (threads per worker; 1 on an event loop)
  app_plan_cpus, app_plan_memory_bytes    the limits it found (memory: absent without one)
  app_plan_db_pool_size                   each worker's database pool (with a database)
  app_plan_long_lived_connections         the WebSockets and event streams planned for (WS_CONNECTIONS; ASGI)

It is a process of its own, not one of the server's, so that it answers the same way whichever server
runs and while every worker is busy. It exits when the server does (its parent).
"""

from __future__ import annotations

import logging
import logging.config
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from . import logs, settings, tuning

log = logging.getLogger("app.metrics")

# Seconds between checks that the server is still there.
PARENT_CHECK_S = 1.0


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class WorkersCollector(Collector):
    """The workers' files, added up; a worker that has exited (replaced, recycled) first loses its
    live gauges (in flight, alive), while its counters and histograms keep counting."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        # prometheus_client's multiprocess module is untyped.
        self.files = MultiProcessCollector(None, path=str(directory))  # type: ignore[no-untyped-call]

    def forget_exited_workers(self) -> None:
        for path in self.directory.glob("gauge_live*_*.db"):
            pid = int(path.stem.rpartition("_")[2])
            if not process_exists(pid):
                mark_process_dead(pid, str(self.directory))  # type: ignore[no-untyped-call]

    def collect(self) -> Iterator[Metric]:
        self.forget_exited_workers()
        yield from self.files.collect()  # type: ignore[no-untyped-call]


class PlanCollector(Collector):
    def __init__(self, plan: tuning.Plan) -> None:
        self.plan = plan

    def collect(self) -> Iterator[Metric]:
        plan = self.plan
        gauges = [
            ("app_plan_workers", "Worker processes the plan chose.", plan.workers),
            ("app_plan_threads", "Threads per worker (1: an event loop).", plan.threads),
            ("app_plan_cpus", "CPUs the plan found (the quota, or the CPUs usable).", plan.cpus),
            ("app_plan_memory_bytes", "The memory limit the plan found.", plan.memory_limit_bytes),
            ("app_plan_db_pool_size", "Database connections per worker.", plan.db_pool_size),
            (
                "app_plan_long_lived_connections",
                "WebSockets and event streams planned for (WS_CONNECTIONS).",
                plan.long_lived_connections if plan.interface == "asgi" else None,
            ),
        ]
        for name, documentation, value in gauges:
            if value is not None:  # no memory limit, no database, WSGI
                yield GaugeMetricFamily(name, documentation, value=value)


def main() -> None:
    current = settings.from_environment()
    address = current.metrics_bind
    if address is None:
        return
    logging.config.dictConfig(logs.dict_config(current, ()))
    registry = CollectorRegistry()
    registry.register(WorkersCollector(current.metrics_dir))
    registry.register(PlanCollector(tuning.start_up_plan()))
    host, port = address
    try:
        start_http_server(port, addr=host, registry=registry)
    except OSError as error:
        log.error("no metrics endpoint: cannot listen on %s:%d (METRICS_PORT): %s", host, port, error.strerror)
        sys.exit(1)
    log.info("metrics on http://%s:%d/metrics", host, port)
    server = os.getppid()
    while os.getppid() == server:
        time.sleep(PARENT_CHECK_S)


if __name__ == "__main__":
    main()
