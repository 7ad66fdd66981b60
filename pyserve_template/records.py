"""Each server's and framework's record: where the template learns everything it knows of them.

A server is one folder, deploy/_servers/<name>/ in the project template: its server.toml, read
here, and the config a generated project's deploy/ gets when that server is chosen (its command
line is the runtime's: runtime/src/pyserve_runtime/servers/<name>/). A framework is
one folder too, <package>/_frameworks/<name>/ with its framework.toml and its sample app. The
compatibility table, the requirements, the memory figures the tuning model plans with, the READMEs
and the tests' matrices all come from these records. cookiecutter.json lists the names, in the
order the user is offered them.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import PROJECT_TEMPLATE, TEMPLATE_ROOT

SERVERS_DIR = PROJECT_TEMPLATE / "deploy" / "_servers"
FRAMEWORKS_DIR = PROJECT_TEMPLATE / "{{cookiecutter.project_slug}}" / "_frameworks"
SERVER_RECORD = "server.toml"
FRAMEWORK_RECORD = "framework.toml"
MIB = 1024 * 1024
# The model's memory figures: at least this much above the largest RSS measured, rounded up to
# MEMORY_STEP_MIB, so that a worker a little larger on another machine or Python build still fits.
MEMORY_MARGIN = 0.10
MEMORY_STEP_MIB = 5


def memory_figure_mib(measured_mib: float) -> int:
    """What the model plans with for a process measured at `measured_mib`: 45.4 -> 50, 41.2 -> 50."""
    # Rounded first: 50 * 1.1 is 55.000000000000014 in floating point, which is still 55.
    return MEMORY_STEP_MIB * math.ceil(round(measured_mib * (1 + MEMORY_MARGIN), 3) / MEMORY_STEP_MIB)


@dataclass(frozen=True)
class Server:
    name: str
    interfaces: tuple[str, ...]
    rss_mib: float  # what runs beside the workers, measured
    connection_kib: int  # one open WebSocket (ASGI)
    engine_restart_s: float
    request_timeout: tuple[str, ...]  # interfaces on which a hung request replaces its worker
    tested_with: str  # the framework of the one stack per server the fault tests run
    requirements: Mapping[str, tuple[str, ...]]  # "any", or an interface
    recycles_on: tuple[str, ...]
    recycling: str
    socket_per_worker: bool
    keepalive_max_s: int | None  # the longest it can keep an idle connection, where it has a bound
    readme: str
    faults: Mapping[str, str]  # what it does not survive, in place of the stack's behaviour
    files: tuple[str, ...]  # its config, which it adds to the generated project's deploy/ for its team to tune

    @property
    def memory_mib(self) -> int:
        """What the model plans with for the server's own processes."""
        return memory_figure_mib(self.rss_mib)

    def requirements_for(self, interface: str) -> list[str]:
        return [*self.requirements.get("any", ()), *self.requirements.get(interface, ())]

    def recycles_workers(self, interface: str) -> bool:
        return interface in self.recycles_on

    def replaces_hung_workers(self, interface: str) -> bool:
        return interface in self.request_timeout


@dataclass(frozen=True)
class Migrations:
    """How a framework's sample, with a database, changes its schema: the tool the release step runs
    (`pyserve migrate`), what the project installs for it, and the linters `make lint` runs on each
    migration before it can reach a database."""

    tool: str
    requirements: tuple[str, ...]
    linters: tuple[str, ...]


# For a sample that talks to PostgreSQL through psycopg, with no ORM to write its migrations: plain
# SQL files applied by yoyo-migrations, linted by squawk. A framework's record names its own otherwise.
SQL_MIGRATIONS = Migrations(tool="yoyo", requirements=("yoyo-migrations==9.0.0",), linters=("squawk-cli==2.70.0",))


@dataclass(frozen=True)
class Framework:
    name: str
    interfaces: tuple[str, ...]  # the native one first
    rss_mib: float  # one worker running the sample app, measured
    app_module_pattern: str
    requirements: Mapping[str, tuple[str, ...]]  # "any", a static strategy or an interface
    files: tuple[str, ...]  # the sample app it adds to the package (its schema's files aside: SCHEMA_FILES)
    migrations: Migrations

    @property
    def memory_mib(self) -> int:
        """What the model plans with for one worker."""
        return memory_figure_mib(self.rss_mib)

    def app_module(self, package: str, interface: str) -> str:
        return self.app_module_pattern.format(package=package, interface=interface)

    def requirements_for(self, static_strategy: str, interface: str) -> list[str]:
        return [
            *self.requirements.get("any", ()),
            *self.requirements.get(static_strategy, ()),
            *self.requirements.get(interface, ()),
        ]


def _read(folder: Path, record: str) -> tuple[dict, tuple[str, ...]]:
    with (folder / record).open("rb") as handle:
        data = tomllib.load(handle)
    files = tuple(sorted(path.name for path in folder.iterdir() if path.name != record))
    return data, files


def _tuples(table: Mapping[str, list[str]]) -> dict[str, tuple[str, ...]]:
    return {key: tuple(values) for key, values in table.items()}


def load_server(folder: Path) -> Server:
    data, files = _read(folder, SERVER_RECORD)
    recycling = data.get("recycling", {})
    return Server(
        name=folder.name,
        interfaces=tuple(data["interfaces"]),
        rss_mib=data["rss_mib"],
        connection_kib=data["connection_kib"],
        engine_restart_s=data["engine_restart_s"],
        request_timeout=tuple(data.get("request_timeout", ())),
        tested_with=data["tested_with"],
        requirements=_tuples(data["requirements"]),
        recycles_on=tuple(recycling.get("interfaces", ())),
        recycling=recycling.get("how", ""),
        socket_per_worker=data.get("socket_per_worker", False),
        keepalive_max_s=data.get("keepalive_max_s"),
        readme=data.get("readme", ""),
        faults=data.get("faults", {}),
        files=files,
    )


# A sample's own schema, which a project gets only with a database (hooks/post_gen_project.py).
SCHEMA_FILES = ("models.py", "migrations")


def load_framework(folder: Path) -> Framework:
    data, files = _read(folder, FRAMEWORK_RECORD)
    return Framework(
        name=folder.name,
        interfaces=tuple(data["interfaces"]),
        rss_mib=data["rss_mib"],
        app_module_pattern=data["app_module"],
        requirements=_tuples(data["requirements"]),
        files=tuple(name for name in files if name not in SCHEMA_FILES),
        migrations=_migrations(data.get("migrations")),
    )


def _migrations(table: Mapping[str, Any] | None) -> Migrations:
    if table is None:
        return SQL_MIGRATIONS
    return Migrations(
        tool=str(table["tool"]),
        requirements=tuple(table.get("requirements", ())),
        linters=tuple(table.get("linters", ())),
    )


def offered(question: str) -> list[str]:
    """The choices cookiecutter.json offers for `question`, `auto` left out."""
    choices = json.loads((TEMPLATE_ROOT / "cookiecutter.json").read_text(encoding="utf-8"))[question]
    return [choice for choice in choices if choice != "auto"]


def _in_offered_order(folders: list[Path], question: str) -> list[Path]:
    order = {name: index for index, name in enumerate(offered(question))}
    return sorted(folders, key=lambda folder: (order.get(folder.name, len(order)), folder.name))


SERVERS: dict[str, Server] = {
    folder.name: load_server(folder)
    for folder in _in_offered_order([path.parent for path in SERVERS_DIR.glob(f"*/{SERVER_RECORD}")], "server")
}
FRAMEWORKS: dict[str, Framework] = {
    folder.name: load_framework(folder)
    for folder in _in_offered_order([path.parent for path in FRAMEWORKS_DIR.glob(f"*/{FRAMEWORK_RECORD}")], "framework")
}


# RSS of the metrics endpoint every project runs beside its server (pyserve_runtime.metrics_server), in
# MiB: the largest seen, after 50 scrapes and after the e2e tests' load runs (Python 3.11,
# prometheus-client 0.26, December 2026).
METRICS_ENDPOINT_RSS_MIB = 26.4


def server_memory_mib(server: str) -> int:
    """What runs beside the workers: the server's own processes and the metrics endpoint."""
    return SERVERS[server].memory_mib + memory_figure_mib(METRICS_ENDPOINT_RSS_MIB)


def memory_figures(framework: str, server: str) -> dict[str, int]:
    """What the tuning model plans with, from the two records: a worker's memory and the server's."""
    return {
        "worker_memory_bytes": FRAMEWORKS[framework].memory_mib * MIB,
        "server_memory_bytes": server_memory_mib(server) * MIB,
    }


def long_lived_figures(server: str, connections: int) -> dict[str, int]:
    """What the tuning model plans with for `connections` WebSockets and event streams (ASGI): the
    server's record gives what one costs."""
    return {"long_lived_connections": connections, "connection_memory_bytes": SERVERS[server].connection_kib * 1024}
