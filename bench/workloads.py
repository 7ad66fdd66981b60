"""What the benchmark asks for, and the most any server could answer (the physical limit)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

IO_MS = 100  # each /api/io request waits this long, as on a database or an HTTP call
CPU_MS = 10  # each /api/cpu request burns this much CPU time
# The hashed stylesheet every bake collects; `{css}` in a path becomes its name (site.<hash>.css).
CSS = "{css}"
# The sample app with the framework's own static route added at /app-static/ (bench/harness.py).
STATIC_ROUTE_APP = "bench_static_route:app"
# The database workload's PostgreSQL, shared with other services: it takes 40 connections, of which
# this service may hold DB_BUDGET (the answer its project is baked with), so that the budget binds.
DB_SERVER_CONNECTIONS = 40
DB_BUDGET = 30


@dataclass(frozen=True)
class Workload:
    name: str  # as given to --workloads
    title: str
    paths: tuple[str, ...]  # asked in turn: a path listed three times is asked three times as often
    answer: str  # the workload the generated project is baked with for it
    static_strategy: str
    every_contender: bool  # False: the app server's setup plays no part, or only the template offers it
    about: str
    app_module: str | None = None  # instead of the project's app (the harness writes this module)
    database: bool = False  # baked with database=postgres, run against a PostgreSQL
    floor: bool = False  # no work of the app's own: what the server and framework cost per request

    @property
    def static(self) -> bool:
        return any(path.startswith(("/static/", "/app-static/")) for path in self.paths)

    def io_ms(self) -> float:
        # A query waits its time on the database as /api/io waits on a timer.
        return self._mean_ms_asked(("/api/io", "/api/db"))

    def cpu_ms(self) -> float:
        return self._mean_ms_asked(("/api/cpu",))

    def _mean_ms_asked(self, endpoints: tuple[str, ...]) -> float:
        """The mean over the paths of the `ms=` each request to these endpoints asks for."""
        asked = (urlsplit(path) for path in self.paths)
        return sum(float(parse_qs(url.query)["ms"][0]) for url in asked if url.path in endpoints) / len(self.paths)

    def physical_limit(self, cpus: float, connections: int) -> float | None:
        return self.limit(cpus, connections, floor_ms=0.0)

    def stack_limit(self, cpus: float, connections: int, floor_ms: float | None) -> float | None:
        """The physical limit with the CPU the server and framework spend on an empty request (the
        floor workload's CPU ms per request, for this stack) added to each request's own work."""
        return None if floor_ms is None else self.limit(cpus, connections, floor_ms)

    def limit(self, cpus: float, connections: int, floor_ms: float) -> float | None:
        """Requests/s no server can beat: each connection waits at least the work's own time
        (Little's law: connections / latency), and the quota runs at most cpus / CPU time per request.
        None for static files, whose cost is the server's own and so has no floor to compare with."""
        if self.floor or self.static:
            return None
        latency_s = (self.io_ms() + self.cpu_ms() + floor_ms) / 1000
        bounds = []
        if latency_s:
            # With a database, no more queries run at once than the connections the budget allows.
            bounds.append(min(connections, DB_BUDGET if self.database else connections) / latency_s)
        if self.cpu_ms() + floor_ms:
            bounds.append(cpus / ((self.cpu_ms() + floor_ms) / 1000))
        return min(bounds) if bounds else None


IO = f"/api/io?ms={IO_MS}"
# /healthz is answered by pyserve_runtime.served_app in front of the framework: the floor goes through it.
EMPTY = "/api/io?ms=0"
DB = f"/api/db?ms={IO_MS}"
CPU = f"/api/cpu?ms={CPU_MS}"

WORKLOADS = {
    workload.name: workload
    for workload in (
        Workload(
            "empty", "empty", (EMPTY,), "io_bound", "nginx", True,
            "/api/io?ms=0: through the framework and back with no work, the floor of what a request costs",
            floor=True,
        ),
        Workload("io", "I/O", (IO,), "io_bound", "nginx", True, f"/api/io: {IO_MS} ms of waiting, almost no CPU"),
        Workload("cpu", "CPU", (CPU,), "cpu_bound", "nginx", True, f"/api/cpu: {CPU_MS} ms of CPU time"),
        Workload("mixed", "mixed", (IO, IO, IO, CPU), "mixed", "nginx", True, "3 of /api/io to 1 of /api/cpu"),
        Workload(
            "static-whitenoise", "static: WhiteNoise", (f"/static/{CSS}",), "io_bound", "whitenoise", True,
            "a hashed stylesheet from WhiteNoise (ServeStatic for ASGI) in the app",
        ),
        Workload(
            "static-nginx", "static: nginx", (f"/static/{CSS}",), "io_bound", "nginx", False,
            "the same file from nginx, the app server idle",
        ),
        Workload(
            "static-app", "static: app route", (f"/app-static/{CSS}",), "io_bound", "nginx", False,
            "the same file from the framework's own static route (Flask send_from_directory, Starlette StaticFiles)",
            STATIC_ROUTE_APP,
        ),
        Workload(
            "db", "database", (DB,), "io_bound", "nginx", False,
            f"/api/db: a {IO_MS} ms query (pg_sleep) through the pool, on a PostgreSQL of"
            f" {DB_SERVER_CONNECTIONS} connections of which the service may hold {DB_BUDGET}",
            database=True,
        ),
    )
}  # fmt: skip
