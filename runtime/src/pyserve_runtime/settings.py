"""What the app server, its health checks and `make local` agree on, each said once.

The constants are this deployment's own choices; the environment sets the rest, read here and
nowhere else in the runtime. Every server's config takes its timeouts, address and log level from here.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shlex
import shutil
import tempfile
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypedDict, TypeVar

from . import values

T = TypeVar("T")

# Every command runs from the project root (the Dockerfile's WORKDIR, the Makefile's directory),
# whose deploy/ holds the answers and the files the project's team owns.
PROJECT = Path.cwd()
# The project's locks, relative to it: the service's, and the load test's (loadtest/pyproject.toml),
# locked on its own so that Locust's dependencies never decide the service's.
LOCK_FILES = ("uv.lock", "loadtest/uv.lock")
DEPLOY = PROJECT / "deploy"
STACK_FILE = DEPLOY / "stack.toml"

# On SIGTERM the server lets the requests in flight finish for this long, then exits: below the
# engine's wait before SIGKILL (compose's stop_grace_period, Kubernetes'
# terminationGracePeriodSeconds less its preStop sleep), so that no request is cut by the kill.
GRACEFUL_STOP_S = 20
# The engine's wait between SIGTERM and SIGKILL (compose's stop_grace_period): the graceful stop,
# with room for the server to exit after it.
STOP_GRACE_PERIOD_S = GRACEFUL_STOP_S + 10
# A stopping nginx (the engine's SIGQUIT, or its old workers after a reload) waits this long for the
# connections it holds, then closes them (worker_shutdown_timeout): as long as the app server waits
# for its requests in flight. WebSockets and event streams never end by themselves: unbounded,
# nginx would wait for them until the engine's SIGKILL, and its old workers would outlive a reload.
NGINX_SHUTDOWN_S = GRACEFUL_STOP_S
# `make deploy` replacing nginx's container (its image changed: config or static files): one
# container at a time can hold the host's port, so from the old one's SIGQUIT until the new one
# listens, new connections are refused. The old one may finish the responses in flight for this
# long, then is killed: short, as every second of it refuses connections; WebSockets and event
# streams are cut at it (nginx cannot close them cleanly; their clients reconnect).
NGINX_REPLACE_DRAIN_S = 2
# nginx keeps a DNS answer for compose's "app" this long (its resolver's valid=): a replica that has
# just started gets requests within it, and `pyserve deploy` waits it out before stopping old ones.
NGINX_DNS_VALID_S = 5
# A deploy starts this many new app replicas beside the ones running and stops an old one once they
# are healthy, until none is left (`make deploy` on compose, the Deployment's maxSurge): memory and
# the database budget need room for one replica more, not for two versions side by side.
DEPLOY_SURGE = 1
# Kubernetes: each container's preStop sleep, while the endpoint leaves the Service, then the stop;
# terminationGracePeriodSeconds covers both.
PRESTOP_S = 5
TERMINATION_GRACE_PERIOD_S = PRESTOP_S + STOP_GRACE_PERIOD_S
# How long the app server keeps an idle connection from nginx: longer than nginx's upstream
# keepalive_timeout (50 s, deploy/nginx/templates/site.conf.template), so that nginx closes idle
# connections first and never sends a request down one the server is closing.
APP_KEEPALIVE_S = 75
# How long a new worker may take to import the app and answer its server before the server gives up
# on it. uvicorn's supervisor waits 5 s by default and then abandons a reload half done, keeping the
# old workers: a fresh interpreter importing FastAPI took 4-5 s here on 2 busy CPUs.
WORKER_START_S = 30
# Answered by the server layer itself (served_app.py), never by the app: "the server is up".
LIVENESS_PATH = "/.alive"
# What the image was built as and from (the Dockerfile's VERSION and REVISION build arguments), on
# every response the app answers, so that a deploy can be checked from outside (served_app.py).
VERSION_HEADER = "X-App-Version"
REVISION_HEADER = "X-App-Revision"
UNRELEASED_VERSION = "dev"
UNKNOWN_REVISION = "unknown"
DEFAULT_APP_PORT = 8000
# Where `make local`'s nginx listens unless HTTP_PORT says otherwise.
DEFAULT_HTTP_PORT = 8080
# `make container-test`'s engine, and how long `make container-test LOADTEST=1` runs the load test.
DEFAULT_COMPOSE = "docker compose"
DEFAULT_DOCKER = "docker"
DEFAULT_LOADTEST_RUN_TIME = "20s"
# Longer than any legitimate request: nginx answers 504 past it (proxy_read_timeout), and
# gunicorn's WSGI workers give up on the request too.
DEFAULT_REQUEST_TIMEOUT_S = 30
# The Prometheus endpoint (metrics_server.py): a port of its own, which nginx never proxies.
# 9464 is the port OpenTelemetry's Prometheus exporter takes by default.
DEFAULT_METRICS_PORT = 9464
# WebSockets (ASGI stacks). The app server pings an idle WebSocket this often, and closes it when the
# pong is as late: a client that vanished without closing (a phone that lost its network) holds
# a worker's slot and descriptor no longer than that. Each ping also counts as traffic for nginx,
# whose own idle timeout on a WebSocket (an hour, deploy/nginx/templates/) is then never reached
# while the client answers. granian sends no pings (it has no setting for them).
WS_PING_INTERVAL_S = 20
WS_PING_TIMEOUT_S = 20
# The largest WebSocket message a worker takes, in bytes: the servers' default, 16 MiB, would let
# a thousand clients ask a worker to hold 16 GiB. Larger uploads belong in an HTTP request.
WS_MAX_MESSAGE_BYTES = 1024 * 1024


# The same for uvicorn and gunicorn's uvicorn worker, as uvicorn names them. No per-message
# compression: its zlib state costs each open WebSocket tens of KiB
# (https://github.com/org/pyserve-template/blob/main/docs/decisions.md#no-per-message-compression-on-websockets).
class UvicornWebSockets(TypedDict):
    ws_ping_interval: float
    ws_ping_timeout: float
    ws_max_size: int
    ws_per_message_deflate: bool


UVICORN_WEBSOCKETS = UvicornWebSockets(
    ws_ping_interval=WS_PING_INTERVAL_S,
    ws_ping_timeout=WS_PING_TIMEOUT_S,
    ws_max_size=WS_MAX_MESSAGE_BYTES,
    ws_per_message_deflate=False,
)
# json: one object per line, for a log collector (the images' default); text: for people (make local).
LOG_FORMATS = ("json", "text")


# TRUSTED_PROXIES, read by nginx: the load balancer or ingress in front, whose X-Forwarded-* nginx
# believes (deploy/nginx/templates/forwarded.conf.template). None unless set: nginx is the edge.
TRUSTED_PROXIES_SEPARATORS = re.compile(r"[\s,]+")


@dataclass(frozen=True)
class Variable:
    """One environment variable the runtime reads, as the project's README lists it."""

    name: str
    default: str
    doc: str
    # Listed only in projects that have it: "asgi", "database" or "django".
    only_for: str = ""


# Every variable read below, in the README's order (its table is made from this).
VARIABLES = (
    Variable("APP_MODULE", "`module` in deploy/stack.toml", "the app the server runs (`module:attribute`)"),
    Variable(
        "HEALTH_PATH",
        "`health_path` in deploy/stack.toml",
        "the app's own health check, which readiness waits on (for stack.toml's module only; `\"\"`: the"
        " server's `/.alive` alone)",
    ),
    Variable("BIND", "`127.0.0.1:APP_PORT`", "the app server's address (compose and Kubernetes: `0.0.0.0:8000`)"),
    Variable("APP_PORT", f"`{DEFAULT_APP_PORT}`", "the app server's port on loopback, where BIND is unset"),
    Variable(
        "REQUEST_TIMEOUT",
        f"`{DEFAULT_REQUEST_TIMEOUT_S}`",
        "seconds a request may run: nginx answers 504 past it (`proxy_read_timeout`), and the pools' wait",
    ),
    Variable(
        "APP_VERSION",
        f"`{UNRELEASED_VERSION}` (the images: the VERSION they were built as)",
        f"the release the app reports (`{VERSION_HEADER}`, the plan line)",
    ),
    Variable(
        "APP_REVISION",
        f"`{UNKNOWN_REVISION}` (the images: the commit they were built from)",
        f"the commit the app reports (`{REVISION_HEADER}`, the plan line)",
    ),
    Variable("LOG_LEVEL", "`info`", "the servers' and the app's log level"),
    Variable("LOG_FORMAT", "`text` (the images: `json`)", "`json`, an object per line for a log collector, or `text`"),
    Variable("ACCESS_LOG", "off", "`1`: the app server writes an access line too, beside nginx's"),
    Variable(
        "METRICS_PORT",
        f"`{DEFAULT_METRICS_PORT}`",
        "the metrics endpoint's port on the app server's host; `off` for none",
    ),
    Variable(
        "FORWARDED_ALLOW_IPS",
        "`127.0.0.1`",
        "the proxies whose X-Forwarded-* the app server believes: nginx (compose: any peer)",
    ),
    Variable(
        "TRUSTED_PROXIES",
        "none",
        "the load balancer in front of nginx, whose X-Forwarded-* nginx believes (addresses or CIDR ranges)",
    ),
    Variable("RUNTIME_DIR", "`/tmp/app-server-<port>`", "the server's files while it runs (the metrics' shared files)"),
    Variable("WEB_CONCURRENCY", "the plan", "workers, taken as given (the model is bypassed)"),
    Variable("WEB_THREADS", "the plan", "threads per worker, taken as given"),
    Variable(
        "WORKER_MEMORY",
        "`worker` in deploy/stack.toml",
        "your app's measured memory per worker (e.g. `180MiB`); the sample app's figure is a floor",
    ),
    Variable(
        "CPU_LIMIT",
        "`cpu` in deploy/stack.toml",
        "the container's CPU limit in cores (`0.5`, `2`, `500m`); set by compose and Kubernetes; a smaller"
        " cgroup quota still wins",
    ),
    Variable(
        "CPU_LIMIT_MILLICORES",
        "unset",
        "the CPU limit as a whole number of millicores (`500`): what Kubernetes' Downward API gives with `divisor: 1m`;"
        " without a cgroup quota it is the node's allocatable CPU, not a limit, and the plan ignores it",
    ),
    Variable(
        "CPU_REQUEST_MILLICORES",
        "unset",
        "the CPU request in millicores (`500`, Downward API, `divisor: 1m`): what the plan uses where no CPU limit is"
        " set (no cgroup quota); `0`, no request",
    ),
    Variable(
        "MEMORY_LIMIT",
        "`memory` in deploy/stack.toml",
        "the container's memory limit (`512MiB`, `2GiB`); set by compose and Kubernetes; a smaller cgroup"
        " limit still wins",
    ),
    Variable(
        "WS_CONNECTIONS",
        "`expected` in deploy/stack.toml",
        "WebSockets and event streams expected open at once in one container; give nginx's container the same",
        "asgi",
    ),
    Variable(
        "DATABASE_URL",
        "none (compose builds it from `POSTGRES_PASSWORD`)",
        "where the database is, `postgresql://user:password@host:5432/name`: the app's pool and the release step",
        "database",
    ),
    Variable(
        "DB_MAX_CONNECTIONS",
        "`max_connections` in deploy/stack.toml",
        "the connections the service may hold on its database, all replicas together; `none` for no budget",
        "database",
    ),
    Variable(
        "MAX_REPLICAS", "`max_replicas` in deploy/stack.toml", "the most replicas that share that budget", "database"
    ),
    Variable(
        "MIGRATE_COMMAND",
        "the sample's migrations (`migrations` in deploy/stack.toml)",
        "the release step's command, run by `pyserve migrate` under its lock, in place of the sample's",
        "database",
    ),
    Variable(
        "DB_POOL_SIZE",
        "the plan",
        "each worker's pool: set by `serve.py` from the plan, not by hand",
        "database",
    ),
    Variable("HTTP_PORT", f"`{DEFAULT_HTTP_PORT}`", "`make local`: nginx's port on loopback"),
    Variable("STATIC_ROOT", "`build/static`", "where the static files are collected, in a directory named `static`"),
    Variable(
        "STATIC_URL", "`/static/`", "the base URL pages link the static files at (a CDN's with `cdn`): the app reads it"
    ),
    Variable("SERVER_NAMES", "none", "the host names nginx serves beside localhost; others get no answer (444)"),
    Variable("NGINX", "the one on PATH", "`make local`: the nginx to run"),
    Variable("UV", "the one on PATH", "`make template-update`: the uv that re-locks the project"),
    Variable("LOCUST", "`locust` on PATH", "`make tune`: the command that runs Locust (make: loadtest/'s locked one)"),
    Variable("COMPOSE", f"`{DEFAULT_COMPOSE}`", "`make container-test`, `make deploy`: the Compose v2 command"),
    Variable("DOCKER", f"`{DEFAULT_DOCKER}`", "`make container-test`, `make deploy`: the engine's CLI"),
    Variable("COMPOSE_PROJECT_NAME", "the project directory's name", "`make deploy`: the compose project it replaces"),
    Variable(
        "IMAGE_REPOSITORY",
        "none",
        "`make publish`, `make deploy IMAGE_TAG=...`: the app image's repository (nginx's: `<it>-nginx`)",
    ),
    Variable(
        "IMAGE_TAG",
        "none: `make deploy` builds from the checkout",
        "`make deploy`: the published version to run; `make publish`: the tag pushed (default: the commit)",
    ),
    Variable("VERSION", "`git describe --tags --always`", "`make publish`: the release the images report"),
    Variable("IMAGE_SOURCE", "none", "`make publish`: the repository's address, in the images' source label"),
    Variable(
        "LOCUST_RUN_TIME",
        f"`{DEFAULT_LOADTEST_RUN_TIME}`",
        "`make container-test LOADTEST=1`: how long the load test runs",
    ),
    Variable(
        "DJANGO_SECRET_KEY",
        "none (`make local` and `make container-test`: a throwaway one)",
        "Django's secret key; compose and the Deployment refuse to start without it",
        "django",
    ),
    Variable(
        "POSTGRES_PASSWORD",
        "none (`make container-test`: a throwaway one)",
        "the database's password; compose refuses to start without it",
        "database",
    ),
)


class SettingError(ValueError):
    """A setting from the environment that cannot work; the message names it, its value and what fits."""


@dataclass(frozen=True)
class Settings:
    bind: str
    log_level: str
    request_timeout_s: int
    forwarded_allow_ips: str
    access_log: bool
    # "wsgi" or "asgi": the project's (deploy/stack.toml), which the app module must speak.
    interface: str
    app_module: str
    health_path: str
    log_format: str
    # None: METRICS_PORT=off, no metrics endpoint.
    metrics_port: int | None
    # The server's files while it runs (the metrics' shared files, granian's logging config): under
    # /tmp (a tmpfs in the containers) unless RUNTIME_DIR says where.
    runtime_dir: Path
    version: str = UNRELEASED_VERSION
    revision: str = UNKNOWN_REVISION

    @property
    def release_headers(self) -> tuple[tuple[str, str], ...]:
        """What every answer of the app carries: the release and the commit it was built from."""
        return ((VERSION_HEADER, self.version), (REVISION_HEADER, self.revision))

    @property
    def port(self) -> str:
        return self.bind.rpartition(":")[2]

    @property
    def metrics_bind(self) -> tuple[str, int] | None:
        """The metrics endpoint's address: the app server's host, its own port."""
        host = self.bind.rpartition(":")[0]
        return None if self.metrics_port is None else (host, self.metrics_port)

    @property
    def metrics_dir(self) -> Path:
        """Where each worker writes its metrics (prometheus_client's multiprocess mode)."""
        return self.runtime_dir / "metrics"

    @property
    def readiness_path(self) -> str:
        """What the healthchecks and `make local` wait on: the app's own check, else the server's."""
        return self.health_path or LIVENESS_PATH


def stack_answers(stack_file: Path = STACK_FILE) -> dict[str, Any]:
    """deploy/stack.toml: what the project was generated with ([stack]) and the app it serves ([app])."""
    with stack_file.open("rb") as handle:
        return tomllib.load(handle)


@dataclass(frozen=True)
class Project:
    """What the project was generated with (deploy/stack.toml), which the runtime branches on."""

    package: str  # the app's Python package
    framework: str
    interface: str  # "wsgi" or "asgi"
    server: str
    database: str  # "none" or the engine
    static_strategy: str  # "none", "nginx", "cdn" or "whitenoise"
    # The tool that applies the app's migrations at release ("django", "yoyo"), "none" without a database.
    migrations: str


def project(stack_file: Path = STACK_FILE) -> Project:
    answers = stack_answers(stack_file)
    chosen = answers["stack"]
    return Project(
        package=answers["template"]["project_slug"],
        framework=chosen["framework"],
        interface=chosen["interface"],
        server=chosen["server"],
        database=answers["database"]["engine"],
        static_strategy=answers["template"]["static_strategy"],
        migrations=answers["database"].get("migrations", "none"),
    )


def request_timeout_s(env: Mapping[str, str]) -> int:
    value = env.get("REQUEST_TIMEOUT", str(DEFAULT_REQUEST_TIMEOUT_S)).strip()
    if not (value.isascii() and value.isdigit()) or int(value) < 1:
        raise SettingError(f"REQUEST_TIMEOUT: {value!r} is not a whole number of seconds > 0; unset it or give e.g. 30")
    return int(value)


@dataclass(frozen=True)
class LocalSettings:
    """`make local`'s own: where its nginx listens, what it serves and which nginx runs."""

    http_port: str  # HTTP_PORT
    app_port: str  # APP_PORT
    static_root: Path  # STATIC_ROOT: the collected static files, in a directory named static
    server_names: tuple[str, ...]  # SERVER_NAMES, beside localhost and 127.0.0.1
    nginx: str | None  # NGINX: the binary to run, else the one on PATH
    search_path: str  # PATH


def local_settings(env: Mapping[str, str]) -> LocalSettings:
    return LocalSettings(
        http_port=env.get("HTTP_PORT", str(DEFAULT_HTTP_PORT)),
        app_port=env.get("APP_PORT", str(DEFAULT_APP_PORT)),
        static_root=Path(env.get("STATIC_ROOT") or PROJECT / "build" / "static").resolve(),
        server_names=tuple(dict.fromkeys(["localhost", "127.0.0.1", *env.get("SERVER_NAMES", "").split()])),
        nginx=env.get("NGINX") or None,
        search_path=env.get("PATH", ""),
    )


def locust_command(env: Mapping[str, str] = os.environ) -> list[str]:
    """LOCUST: the command `make tune` runs the load test with, else `locust` on PATH."""
    return shlex.split(env.get("LOCUST") or "locust")


def uv_command(env: Mapping[str, str] = os.environ) -> str | None:
    """UV: the uv `make template-update` re-locks with, else the one on PATH."""
    return env.get("UV") or shutil.which("uv", path=env.get("PATH"))


@dataclass(frozen=True)
class ContainerTestSettings:
    """`make container-test`'s own: the engine it drives, and what a stack needs that it makes up
    for the run unless given."""

    compose: str  # COMPOSE: the Compose v2 command
    docker: str  # DOCKER: the engine's CLI
    locust_run_time: str  # LOCUST_RUN_TIME: how long `make loadtest` runs against the stack
    django_secret_key: str | None  # DJANGO_SECRET_KEY
    postgres_password: str | None  # POSTGRES_PASSWORD


def container_test_settings(env: Mapping[str, str]) -> ContainerTestSettings:
    return ContainerTestSettings(
        compose=env.get("COMPOSE", DEFAULT_COMPOSE),
        docker=env.get("DOCKER", DEFAULT_DOCKER),
        locust_run_time=env.get("LOCUST_RUN_TIME") or DEFAULT_LOADTEST_RUN_TIME,
        django_secret_key=env.get("DJANGO_SECRET_KEY") or None,
        postgres_password=env.get("POSTGRES_PASSWORD") or None,
    )


# A repository as the engines name one: an optional registry host (and port), then lowercase path
# components (https://github.com/distribution/reference/blob/main/reference.go); a tag after it.
IMAGE_REPOSITORY_PATTERN = re.compile(
    r"(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
)
IMAGE_TAG_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
# What the Kubernetes manifests name until `make release` names a published version: never `latest`,
# which a later pull may make another build.
UNRELEASED_IMAGE_TAG = "unreleased"
# The compose services whose images `make publish` pushes, and what each adds to IMAGE_REPOSITORY.
PUBLISHED_IMAGES = {"app": "", "nginx": "-nginx"}
# The compose file that runs published images instead of building them (`make deploy IMAGE_TAG=...`).
RELEASE_COMPOSE_FILE = "compose.release.yaml"
# One line per deploy, newest last (its time and its tag): what `make rollback` goes back along.
DEPLOY_HISTORY = PROJECT / ".deploy-history"


@dataclass(frozen=True)
class ReleaseSettings:
    """What is published and run: `make publish` and `make deploy IMAGE_TAG=...`."""

    image_repository: str | None  # IMAGE_REPOSITORY
    image_tag: str | None  # IMAGE_TAG
    version: str | None  # VERSION: else what `git describe` says
    source: str | None  # IMAGE_SOURCE


def release_settings(env: Mapping[str, str]) -> ReleaseSettings:
    repository = env.get("IMAGE_REPOSITORY", "").strip() or None
    if repository is not None and not IMAGE_REPOSITORY_PATTERN.fullmatch(repository):
        raise SettingError(
            f"IMAGE_REPOSITORY: {repository!r} is not an image repository; give e.g. ghcr.io/org/my-service"
            " (lowercase, no tag)"
        )
    tag = env.get("IMAGE_TAG", "").strip() or None
    if tag is not None and not IMAGE_TAG_PATTERN.fullmatch(tag):
        raise SettingError(
            f"IMAGE_TAG: {tag!r} is not an image tag; give letters, digits, '_', '.' or '-' (up to 128), e.g. v1.4.0"
        )
    version = header_value("VERSION", env.get("VERSION"), "") or None
    return ReleaseSettings(repository, tag, version, env.get("IMAGE_SOURCE", "").strip() or None)


def compose_project_name(env: Mapping[str, str]) -> str:
    """compose's own default: COMPOSE_PROJECT_NAME, else the project directory's name in its alphabet."""
    return env.get("COMPOSE_PROJECT_NAME") or re.sub(r"[^a-z0-9_-]", "", PROJECT.name.lower())


@dataclass(frozen=True)
class MigrateSettings:
    """`pyserve migrate`'s own: the database, and the team's command where it replaces the sample's."""

    database_url: str  # DATABASE_URL
    command: tuple[str, ...]  # MIGRATE_COMMAND, split as a shell would; () for the sample's migrations


def database_url(env: Mapping[str, str]) -> str | None:
    """DATABASE_URL, where one is given."""
    return env.get("DATABASE_URL", "").strip() or None


def migrate_settings(env: Mapping[str, str]) -> MigrateSettings:
    url = database_url(env) or ""
    if url.partition("://")[0] not in {"postgresql", "postgres"}:
        shown = repr(url) if url else "not set"
        raise SettingError(f"DATABASE_URL: {shown}; give postgresql://user:password@host:5432/name")
    raw = env.get("MIGRATE_COMMAND", "").strip()
    try:
        command = tuple(shlex.split(raw))
    except ValueError as error:
        raise SettingError(f"MIGRATE_COMMAND: {raw!r} cannot be split as a shell would ({error})") from None
    return MigrateSettings(database_url=url, command=command)


@dataclass(frozen=True)
class PlanOverrides:
    """What the environment sets over the plan's inputs (tuning/); None where it sets nothing."""

    cpu_limit: float | None = None  # CPU_LIMIT, in cores
    cpu_limit_millicores: float | None = None  # CPU_LIMIT_MILLICORES, in cores
    cpu_request_millicores: float | None = None  # CPU_REQUEST_MILLICORES, in cores (0: no request, None)
    memory_limit_bytes: int | None = None  # MEMORY_LIMIT
    worker_memory_bytes: int | None = None  # WORKER_MEMORY
    workers: int | None = None  # WEB_CONCURRENCY
    threads: int | None = None  # WEB_THREADS
    long_lived_connections: int | None = None  # WS_CONNECTIONS
    # DB_MAX_CONNECTIONS ("none": no budget) and MAX_REPLICAS, read for projects with a database.
    db_max_connections: int | Literal["none"] | None = None
    max_replicas: int | None = None


def plan_overrides(env: Mapping[str, str], with_database: bool) -> PlanOverrides:
    """The environment's word on the plan; each refusal a TuningError naming the variable."""

    def given(name: str) -> str | None:
        return env.get(name, "").strip() or None

    budget = given("DB_MAX_CONNECTIONS") if with_database else None
    replicas = given("MAX_REPLICAS") if with_database else None
    # In this order: a refusal names the first variable that cannot work.
    return PlanOverrides(
        cpu_limit=_given(given("CPU_LIMIT"), lambda raw: values.parse_cpus(raw, "CPU_LIMIT")),
        cpu_limit_millicores=_given(given("CPU_LIMIT_MILLICORES"), values.parse_millicores),
        cpu_request_millicores=_given(given("CPU_REQUEST_MILLICORES"), values.parse_request_millicores),
        memory_limit_bytes=_given(given("MEMORY_LIMIT"), lambda raw: values.parse_memory(raw, "MEMORY_LIMIT")),
        worker_memory_bytes=_given(given("WORKER_MEMORY"), lambda raw: values.parse_memory(raw, "WORKER_MEMORY")),
        workers=_given(given("WEB_CONCURRENCY"), lambda raw: values.parse_positive(raw, "WEB_CONCURRENCY")),
        threads=_given(given("WEB_THREADS"), lambda raw: values.parse_positive(raw, "WEB_THREADS")),
        db_max_connections=_given(budget, lambda raw: values.parse_connections(raw, "DB_MAX_CONNECTIONS") or "none"),
        max_replicas=_given(replicas, lambda raw: values.parse_replicas(raw, "MAX_REPLICAS")),
        long_lived_connections=_given(given("WS_CONNECTIONS"), values.parse_long_lived),
    )


def _given(raw: str | None, parse: Callable[[str], T]) -> T | None:
    return None if raw is None else parse(raw)


def db_pool_size(env: Mapping[str, str]) -> int | None:
    """DB_POOL_SIZE: the connections each worker's pool may hold, which serve.py sets from the
    plan for the app's pool to read; None where nothing set it (a development server)."""
    value = env.get("DB_POOL_SIZE", "").strip()
    if not value:
        return None
    if not (value.isascii() and value.isdigit()) or int(value) < 1:
        raise SettingError(f"DB_POOL_SIZE: {value!r} is not a whole number > 0; leave it to serve.py")
    return int(value)


def log_format(env: Mapping[str, str]) -> str:
    value = env.get("LOG_FORMAT", "text").strip().lower()
    if value not in LOG_FORMATS:
        raise SettingError(f"LOG_FORMAT: {value!r} is not one of {', '.join(LOG_FORMATS)}")
    return value


def header_value(name: str, given: str | None, default: str) -> str:
    """A value the app sends in a response header: printable ASCII without spaces, as a tag or a commit is."""
    value = (given or "").strip() or default
    if not (value.isascii() and value.isprintable()) or " " in value:
        raise SettingError(f"{name}: {value!r} is not a version or a commit; give printable ASCII without spaces")
    return value


def metrics_port(env: Mapping[str, str]) -> int | None:
    value = env.get("METRICS_PORT", str(DEFAULT_METRICS_PORT)).strip().lower()
    if value == "off":
        return None
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= 65535:
        raise SettingError(f"METRICS_PORT: {value!r} is not a port (1-65535) or off; unset it or give e.g. 9464")
    return int(value)


def trusted_proxies(env: Mapping[str, str]) -> tuple[str, ...]:
    """TRUSTED_PROXIES as written (nginx renders them so), each checked to be an address or a CIDR range."""
    proxies = tuple(item for item in TRUSTED_PROXIES_SEPARATORS.split(env.get("TRUSTED_PROXIES", "")) if item)
    for proxy in proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            accepted = "give e.g. 10.0.0.0/8, or leave it unset"
            raise SettingError(f"TRUSTED_PROXIES: {proxy!r} is not an IP address or CIDR range; {accepted}") from None
    return proxies


def from_environment(env: Mapping[str, str] = os.environ) -> Settings:
    """The settings for this process. HEALTH_PATH is the app's own check: stack.toml's when the app
    served is the one stack.toml names; another app (APP_MODULE set) may have none, and then the
    checks use LIVENESS_PATH. HEALTH_PATH="" says so for stack.toml's app too."""
    stack = stack_answers()
    answers = stack["app"]
    app_module = env.get("APP_MODULE") or answers["module"]
    default_health = answers.get("health_path", "") if app_module == answers["module"] else ""
    bind = env.get("BIND") or f"127.0.0.1:{env.get('APP_PORT', DEFAULT_APP_PORT)}"
    # One directory per port: two servers on one machine never share (and clean) each other's files.
    default_runtime_dir = Path(tempfile.gettempdir()) / f"app-server-{bind.rpartition(':')[2]}"
    return Settings(
        bind=bind,
        log_level=env.get("LOG_LEVEL", "info").lower(),
        request_timeout_s=request_timeout_s(env),
        forwarded_allow_ips=env.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
        access_log=env.get("ACCESS_LOG", "").lower() in {"1", "true", "yes", "on"},
        interface=stack["stack"]["interface"],
        app_module=app_module,
        health_path=env.get("HEALTH_PATH", default_health),
        log_format=log_format(env),
        metrics_port=metrics_port(env),
        runtime_dir=Path(env.get("RUNTIME_DIR") or default_runtime_dir),
        version=header_value("APP_VERSION", env.get("APP_VERSION"), UNRELEASED_VERSION),
        revision=header_value("APP_REVISION", env.get("APP_REVISION"), UNKNOWN_REVISION),
    )
