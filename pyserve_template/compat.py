"""What works with what: the one compatibility table.

It drives the hooks (what is refused, what `auto` means), the README's matrix
(`python -m pyserve_template.compat`) and the test matrix (`supported_stacks()`).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass

from . import TEMPLATE_ROOT, records, tuning, values

# The interfaces each framework speaks (its native one first, which `interface=auto` picks) and
# each server serves: from their records.
FRAMEWORK_INTERFACES: dict[str, tuple[str, ...]] = {name: fw.interfaces for name, fw in records.FRAMEWORKS.items()}
SERVER_INTERFACES: dict[str, tuple[str, ...]] = {name: server.interfaces for name, server in records.SERVERS.items()}

# `server=auto`, per interface and workload: the server the benchmark measured best among those
# that survive the fault suite, and why, with the figures and the run they came from (bench/auto.py
# chooses; tests/test_auto_choice.py keeps this file in step with bench/results/results.json).
AUTO_CHOICES = TEMPLATE_ROOT / "bench" / "results" / "auto.json"


def _auto_choices() -> dict[tuple[str, str], tuple[str, str]]:
    choices = json.loads(AUTO_CHOICES.read_text(encoding="utf-8"))["choices"]
    return {(choice["interface"], choice["workload"]): (choice["server"], choice["reason"]) for choice in choices}


AUTO_SERVER: dict[tuple[str, str], tuple[str, str]] = _auto_choices()

# What the stack does when things go wrong, in the words the user reads: printed when a project is
# generated (the caveats), written into its README (all of it), and held true by tests/test_faults.py.
FAULTS: dict[str, str] = {
    "killed_worker": "the server starts a new worker; only the requests the dead one held fail",
    "sigterm": "requests in flight finish (up to 20 s), then the server exits",
    "reload": "SIGHUP replaces the workers (new ones serving before old ones stop) without a failed request",
    "slow_clients": "nginx holds slow clients and their bodies; the app sees only whole requests",
    "large_body": "a body over 10 MiB gets 413 from nginx; the app never sees it",
    "traversal": "nginx serves only files under the static root, never a dotfile",
}
FAULT_NAMES: dict[str, str] = {
    "killed_worker": "A worker killed (SIGKILL, the OOM killer)",
    "sigterm": "SIGTERM (docker stop, a rolling update)",
    "reload": "A reload",
    "hung_request": "A request that hangs past REQUEST_TIMEOUT (30 s)",
    "slow_clients": "Slow clients",
    "large_body": "A huge request body",
    "traversal": "Path traversal and dotfile probes",
}
# What a server does not survive, in place of what the stack does (its record's [faults]).
FAULT_CAVEATS: dict[str, dict[str, str]] = {
    name: dict(server.faults) for name, server in records.SERVERS.items() if server.faults
}

# Servers whose workers each listen on a socket of their own (SO_REUSEPORT) rather than share one:
# compose.yaml sets net.ipv4.tcp_migrate_req for these (see their records).
SOCKET_PER_WORKER = frozenset(name for name, server in records.SERVERS.items() if server.socket_per_worker)

# What the container engine adds (compose.yaml's restart policy, replicas, memory limit and stop
# order), in the words the user reads: written into the README and held true by
# tests/test_container_faults.py on Docker 20.10 (Debian 12's dockerd), under 16 clients of steady
# load through nginx.
ENGINE_FAULT_NAMES: dict[str, str] = {
    "server_killed": "The app server killed (or exiting)",
    "replica_killed": "The same with replicas",
    "out_of_memory": "A worker past the memory limit",
    "stop": "`docker compose stop` (a redeploy)",
}
# Seconds from the app server's death to serving again through nginx, the engine restarting the
# container (each server's record), and those `docker compose stop` took (measured 1.0-1.9), rounded up.
ENGINE_RESTART_S: dict[str, float] = {name: server.engine_restart_s for name, server in records.SERVERS.items()}
ENGINE_STOP_S = 2


def engine_fault_behaviour(server: str) -> dict[str, str]:
    """Fault -> what the engine makes of it with this server, figures included."""
    oom_event = (
        "`docker inspect` says `OOMKilled: true` only when the container's main process died; a worker's"
        " kill is in the cgroup's `oom_kill` count (`/sys/fs/cgroup/memory.events`; cgroup v1:"
        " `/sys/fs/cgroup/memory/memory.oom_control`), and usually in `docker events --filter event=oom`,"
        " which missed it on a busy host (cgroup v1, Docker 20.10): alert on the count, not the event"
    )
    if "killed_worker" in FAULT_CAVEATS.get(server, {}):
        oom = (
            f"the kernel's OOM killer takes the worker that grew; {server} exits as for any dead worker and"
            " the engine restarts the container as above (`docker inspect`: `OOMKilled: true`, `RestartCount` + 1)"
        )
    else:
        oom = (
            f"the kernel's OOM killer takes the process holding the most memory, the worker that grew; {server}"
            f" starts a new one and the others keep serving: only the requests it held fail. Now and then the"
            " kernel takes a second worker before the first one's memory is freed (seen in about 1 run of 6: a"
            f" 25 MiB worker killed 7 ms after the 400 MiB one); {server} replaces it too. {oom_event}"
        )
    return {
        "server_killed": (
            "the engine restarts the container (compose: `restart: unless-stopped`; Kubernetes: the kubelet),"
            f" serving again about {ENGINE_RESTART_S[server]:g} s after the server died. The requests in flight on"
            " it fail; until it listens again nginx answers 502 (504 when it cannot connect within 300 ms while"
            " the container has no address)"
        ),
        "replica_killed": (
            "with `docker compose up --scale app=3` nginx sends a GET that fails on the dead replica to another"
            " one, unless it had already passed that response's headers on: a response the replica was in the"
            " middle of sending is cut (seen once, 1 GET of about 8,700; nothing else failed). On Kubernetes"
            " each pod's nginx has only its own app, so its pod answers 502 until the restart"
        ),
        "out_of_memory": oom,
        "stop": (
            "compose stops nginx first, which finishes the responses it is sending (SIGQUIT) while the app"
            " still serves them, then the app: every request in flight finished, and both stopped within about"
            f" {ENGINE_STOP_S} s, well inside their 30 s grace period. New connections are refused from the"
            " start: a load balancer in front must stop sending first (on Kubernetes the preStop hooks wait for that)"
        ),
    }


def hung_request_replaces_the_worker(server: str, interface: str) -> bool:
    """Whether the server has a request timeout (REQUEST_TIMEOUT) on this interface: its record says."""
    return records.SERVERS[server].replaces_hung_workers(interface)


def hung_request_behaviour(server: str, interface: str) -> str:
    if hung_request_replaces_the_worker(server, interface):
        return "nginx answers 504; the worker holding it retires and a new one takes its place"
    if interface == "wsgi":
        return "nginx answers 504; it holds one of the worker's threads until it ends, the others keep serving"
    return "nginx answers 504; it holds one coroutine, not the worker, which keeps serving"


def fault_behaviour(server: str, interface: str) -> dict[str, tuple[str, bool]]:
    """Fault -> (what happens, whether the stack survives it), for this server and interface."""
    texts = {**FAULTS, "hung_request": hung_request_behaviour(server, interface)}
    caveats = FAULT_CAVEATS.get(server, {})
    return {fault: (caveats.get(fault, texts[fault]), fault not in caveats) for fault in FAULT_NAMES}


STATIC_STRATEGIES = ("nginx", "whitenoise", "cdn", "none")

# WhiteNoise serves WSGI only (its maintainer has no ASGI plans); ServeStatic, its maintained fork,
# does both, so `whitenoise` means "the app serves its own compressed, hashed files" for every stack.
STATIC_PACKAGE = {"wsgi": "whitenoise", "asgi": "servestatic"}
STATIC_REQUIREMENT = {"whitenoise": "whitenoise==6.12.0", "servestatic": "servestatic==4.4.0"}

FRAMEWORKS = tuple(records.FRAMEWORKS)
SERVERS = tuple(records.SERVERS)
INTERFACES = tuning.INTERFACES
WORKLOADS = tuning.WORKLOADS
# Base images by exact release, so that two builds of one commit start from the same Python, nginx
# and PostgreSQL; Dependabot proposes each newer patch release as a pull request (.github/dependabot.yml).
# Each offered Python is built and run in a container by the suite (tests/engine.py's stand-ins);
# 3.12 is not offered, as no Debian suite carries it to stand in for its image here.
PYTHON_IMAGES = {"3.13": "python:3.13.18-slim-trixie", "3.14": "python:3.14.10-slim-trixie"}
PYTHON_VERSIONS = tuple(PYTHON_IMAGES)
NGINX_IMAGE = "nginx:1.30.6-alpine"
DATABASES = ("none", "postgres")
# The database's own image in compose, and what the app talks to it with.
POSTGRES_IMAGE = "postgres:17.12-trixie"
# Who ends TLS for compose: nothing (none: plain HTTP, or a load balancer in front), nginx with a
# certificate from an ACME CA (acme: lego, in its own service), or nginx with the team's own files.
TLS_MODES = ("none", "acme", "files")
# The ACME client's image (compose's acme service, tls=acme), by exact release as the others.
LEGO_IMAGE = "goacme/lego:v4.35.2"
DATABASE_REQUIREMENTS = ("psycopg[binary]==3.3.9", "psycopg-pool==3.3.3")
# Every project's: the workers' metrics and their endpoint (pyserve_runtime.metrics, pyserve_runtime.metrics_server).
SERVING_REQUIREMENTS = ("prometheus-client==0.26.0",)


def template_pin(name: str) -> str:
    """`name==version` as this template's own tools pin it (requirements-dev.in)."""
    for line in (TEMPLATE_ROOT / "requirements-dev.in").read_text(encoding="utf-8").splitlines():
        if line.split("==")[0].strip() == name:
            return line.strip()
    raise LookupError(f"{name} is not pinned in requirements-dev.in")


# The uv that locks a bake and builds its image: the one this template's tests run.
UV_REQUIREMENT = template_pin("uv")
# What the HPA keeps at least, and so the fewest max_replicas a project with Kubernetes may answer.
MIN_REPLICAS = 2


class AnswerError(values.TuningError):
    """An answer that cannot work; the message names the field, the value and what is accepted."""


@dataclass(frozen=True)
class Stack:
    framework: str
    interface: str
    server: str

    @property
    def id(self) -> str:
        return f"{self.framework}-{self.interface}-{self.server}"


def supports(framework: str, interface: str, server: str) -> bool:
    return interface in FRAMEWORK_INTERFACES[framework] and interface in SERVER_INTERFACES[server]


def supported_stacks() -> list[Stack]:
    """Every framework x interface x server that works."""
    return [Stack(*combo) for combo in itertools.product(FRAMEWORKS, INTERFACES, SERVERS) if supports(*combo)]


def unsupported_stacks() -> list[Stack]:
    return [Stack(*combo) for combo in itertools.product(FRAMEWORKS, INTERFACES, SERVERS) if not supports(*combo)]


def _servers_for(interface: str) -> str:
    return ", ".join(s for s in SERVERS if interface in SERVER_INTERFACES[s]) + " or auto"


def resolve_interface(framework: str, interface: str, server: str) -> tuple[str, str]:
    """The interface to use, and why, for the answers given."""
    spoken = FRAMEWORK_INTERFACES[framework]
    if interface != "auto":
        if interface not in spoken:
            only = " or ".join(i.upper() for i in spoken)
            raise AnswerError(
                "interface",
                interface,
                f"is not spoken by {framework} ({only} only)",
                f"choose {' or '.join(spoken)} or auto",
            )
        return interface, "as asked"
    if server == "auto":
        return spoken[0], f"{framework}'s native interface"
    for candidate in spoken:
        if candidate in SERVER_INTERFACES[server]:
            why = "native interface" if candidate == spoken[0] else f"interface that {server} serves"
            return candidate, f"{framework}'s {why}"
    raise AnswerError(
        "server",
        server,
        f"cannot serve {framework} ({'/'.join(i.upper() for i in spoken)} only)",
        f"choose {_servers_for(spoken[0])}",
    )


def auto_server(interface: str, workload: str) -> tuple[str, str]:
    """The server `auto` picks for this interface and workload, and why."""
    return AUTO_SERVER[interface, workload]


def resolve_server(interface: str, server: str, workload: str) -> tuple[str, str]:
    """The server to use, and why, for an interface already resolved."""
    if server == "auto":
        return auto_server(interface, workload)
    if interface not in SERVER_INTERFACES[server]:
        raise AnswerError(
            "server",
            server,
            f"does not serve {interface.upper()}",
            f"for {interface.upper()} choose {_servers_for(interface)}",
        )
    return server, "as asked"


def matrix_markdown() -> str:
    """The README's compatibility matrix, generated from the table above."""
    lines = [
        "| framework | interface | " + " | ".join(SERVERS) + " | static_strategy=whitenoise uses |",
        "|" + "---|" * (len(SERVERS) + 3),
    ]
    for framework, spoken in FRAMEWORK_INTERFACES.items():
        for interface in spoken:
            native = " (native)" if interface == spoken[0] else ""
            cells = ["yes" if supports(framework, interface, server) else "-" for server in SERVERS]
            row = [framework, interface + native, *cells, STATIC_PACKAGE[interface]]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(matrix_markdown())
