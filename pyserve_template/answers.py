"""Turn the raw cookiecutter answers into a resolved, validated stack and its tuning plan.

Every refusal is a TuningError (AnswerError for what only the template checks) whose message is the
one line the user sees.
"""

from __future__ import annotations

import keyword
import re
import sys
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from . import compat, records, settings, tuning, values
from .compat import AnswerError

# Names a generated package must not take: it would shadow what the project imports.
_SHADOWED = frozenset(sys.stdlib_module_names) | {
    *compat.FRAMEWORKS,
    *compat.SERVERS,
    "tests",
    "deploy",
    "site",
    "whitenoise",
    "servestatic",
    "uvicorn_worker",
    "locust",
    "a2wsgi",
}
_SLUG = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Connections compose's PostgreSQL keeps beside the service's budget (Answers.db_server_max_connections).
DB_RESERVED_CONNECTIONS = 10


@dataclass(frozen=True)
class Answers:
    project_name: str
    project_slug: str
    framework: str
    interface: str
    interface_reason: str
    server: str
    server_reason: str
    workload: str
    cpus: float
    memory_limit_bytes: int
    static_strategy: str
    static_package: str | None
    python_version: str
    use_kubernetes: bool
    database: str
    tls: str
    max_replicas: int
    db_max_connections: int | None  # None: no budget (or no database)
    plan: Any  # tuning.Plan

    @property
    def memory_limit_mib(self) -> int:
        return self.memory_limit_bytes // values.MIB

    @property
    def cpu_cores(self) -> str:
        """The CPU limit as compose and Docker write it: 0.5, not 500m."""
        return f"{self.cpus:g}"

    @property
    def app_module(self) -> str:
        """The sample app's WSGI/ASGI callable: what APP_MODULE defaults to."""
        return records.FRAMEWORKS[self.framework].app_module(self.project_slug, self.interface)

    @property
    def worker_memory_mib(self) -> int:
        return records.FRAMEWORKS[self.framework].memory_mib

    @property
    def server_memory_mib(self) -> int:
        return records.server_memory_mib(self.server)

    @property
    def long_lived_connections(self) -> int:
        """WebSockets and event streams planned for by default: ASGI stacks only."""
        return tuning.DEFAULT_LONG_LIVED_CONNECTIONS if self.interface == "asgi" else 0

    @property
    def connection_memory_kib(self) -> int:
        return self.server_record.connection_kib

    @property
    def ws_ping_interval_s(self) -> int:
        return settings.WS_PING_INTERVAL_S

    @property
    def server_record(self) -> records.Server:
        return records.SERVERS[self.server]

    @property
    def socket_per_worker(self) -> bool:
        return self.server_record.socket_per_worker

    @property
    def replaces_hung_workers(self) -> bool:
        return self.server_record.replaces_hung_workers(self.interface)

    @property
    def keepalive_s(self) -> int:
        """How long the server keeps an idle connection from nginx (the runtime's settings, or less where it cannot)."""
        return min(settings.APP_KEEPALIVE_S, self.server_record.keepalive_max_s or settings.APP_KEEPALIVE_S)

    @property
    def graceful_stop_s(self) -> int:
        return settings.GRACEFUL_STOP_S

    @property
    def stop_grace_period_s(self) -> int:
        return settings.STOP_GRACE_PERIOD_S

    @property
    def nginx_shutdown_s(self) -> int:
        return settings.NGINX_SHUTDOWN_S

    @property
    def nginx_replace_drain_s(self) -> int:
        return settings.NGINX_REPLACE_DRAIN_S

    @property
    def deploy_surge(self) -> int:
        return settings.DEPLOY_SURGE

    @property
    def nginx_dns_valid_s(self) -> int:
        return settings.NGINX_DNS_VALID_S

    @property
    def prestop_s(self) -> int:
        return settings.PRESTOP_S

    @property
    def unreleased_image_tag(self) -> str:
        return settings.UNRELEASED_IMAGE_TAG

    @property
    def termination_grace_period_s(self) -> int:
        return settings.TERMINATION_GRACE_PERIOD_S

    @property
    def request_timeout_s(self) -> int:
        return settings.DEFAULT_REQUEST_TIMEOUT_S

    @property
    def server_files(self) -> str:
        """The server's own config in deploy/, for the README."""
        return ", ".join(f"`deploy/{name}`" for name in self.server_record.files) or "no config file: flags only"

    @property
    def server_notes(self) -> str:
        """What the README says of this server's workers: recycled or not, and its record's own words."""
        server = self.server_record
        if server.recycles_workers(self.interface):
            recycling = f"Workers are recycled ({server.recycling}) and replaced when they crash."
        else:
            recycling = (
                f"Workers are not recycled: a recycled {self.server} worker dropped requests under load (measured)."
            )
        return " ".join(filter(None, [recycling, server.readme]))

    @property
    def uv_requirement(self) -> str:
        return compat.UV_REQUIREMENT

    @property
    def requirements(self) -> list[str]:
        """pyproject.toml's dependencies: the framework's, the server's, the metrics', the static files' and the
        database's packages, pinned."""
        return [
            *records.FRAMEWORKS[self.framework].requirements_for(self.static_strategy, self.interface),
            *records.SERVERS[self.server].requirements_for(self.interface),
            *compat.SERVING_REQUIREMENTS,
            *([compat.STATIC_REQUIREMENT[self.static_package]] if self.static_package else []),
            *(compat.DATABASE_REQUIREMENTS if self.database != "none" else ()),
            *(self.migrations.requirements if self.database != "none" else ()),
        ]

    @property
    def migrations(self) -> records.Migrations:
        """How the sample's schema changes, with a database (the framework's record)."""
        return records.FRAMEWORKS[self.framework].migrations

    @property
    def release_step_connections(self) -> int:
        """What the release step holds on the database, kept out of the pools' budget."""
        return tuning.RELEASE_STEP_CONNECTIONS

    @property
    def migrations_tool(self) -> str:
        return self.migrations.tool

    @property
    def migration_linters(self) -> list[str]:
        """The lint group's linters of migrations: none without a database."""
        return list(self.migrations.linters) if self.database != "none" else []

    @property
    def db_budget_text(self) -> str:
        """The budget as the environment gives it: a number, or none."""
        return "none" if self.db_max_connections is None else str(self.db_max_connections)

    @property
    def db_budget_toml(self) -> str:
        """The budget as deploy/stack.toml writes it: a number, or the string "none"."""
        return '"none"' if self.db_max_connections is None else str(self.db_max_connections)

    @property
    def python_image(self) -> str:
        return compat.PYTHON_IMAGES[self.python_version]

    @property
    def nginx_image(self) -> str:
        return compat.NGINX_IMAGE

    @property
    def postgres_image(self) -> str:
        return compat.POSTGRES_IMAGE

    @property
    def postgres_major(self) -> str:
        """compose's PostgreSQL's major version, which the migration linter checks against."""
        return compat.POSTGRES_IMAGE.partition(":")[2].split(".")[0]

    @property
    def lego_image(self) -> str:
        return compat.LEGO_IMAGE

    @property
    def public_host(self) -> str:
        """The host name the Kubernetes manifests route (a placeholder under example.com, for the team's own)."""
        return f"{self.project_slug.replace('_', '-').strip('-')}.example.com"

    @property
    def min_replicas(self) -> int:
        return compat.MIN_REPLICAS

    @property
    def autoscale_in_flight(self) -> int:
        """Requests in flight per pod past which the autoscaler adds one (the plan's figure x AUTOSCALE_AT)."""
        return int(self.plan.autoscale_in_flight)

    @property
    def planned_in_flight(self) -> int:
        return int(self.plan.planned_in_flight)

    @property
    def autoscale_cpu_percent(self) -> int:
        """The CPU utilization, of the pod's request, past which the autoscaler adds a pod."""
        return round(tuning.AUTOSCALE_AT * 100)

    @property
    def db_server_max_connections(self) -> int:
        """compose's PostgreSQL: the service's budget, PostgreSQL's 3 superuser slots and 7 for a
        person with psql and monitoring (the release step's are in the budget)."""
        return (self.db_max_connections or DEFAULT_DB_MAX_CONNECTIONS) + DB_RESERVED_CONNECTIONS


def derive_slug(project_name: object) -> str:
    """A default project_slug: always a valid, non-keyword identifier (the user may type another)."""
    ascii_name = unicodedata.normalize("NFKD", str(project_name)).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "_", ascii_name.lower()).strip("_") or "service"
    if slug[0].isdigit():
        slug = f"service_{slug}"
    if keyword.iskeyword(slug) or keyword.issoftkeyword(slug) or slug in _SHADOWED:
        slug = f"{slug}_service"
    return slug


# A budget that fits PostgreSQL's default max_connections (100) with room to spare.
DEFAULT_DB_MAX_CONNECTIONS = 90
# Most replicas: what Kubernetes' HPA may scale to; one without it (compose --scale is by hand).
DEFAULT_MAX_REPLICAS = {True: 10, False: 1}


def default_for(name: str, given: Mapping[str, Any]) -> str:
    """The default of a question whose default follows earlier answers, as cookiecutter.json shows it."""
    if name == "project_slug":
        return derive_slug(given.get("project_name", ""))
    if name == "max_replicas":
        return str(DEFAULT_MAX_REPLICAS[_boolean("use_kubernetes", given.get("use_kubernetes", False))])
    if name == "db_max_connections":
        return str(DEFAULT_DB_MAX_CONNECTIONS) if given.get("database") == "postgres" else "none"
    raise KeyError(name)


COMPUTED_DEFAULTS = ("project_slug", "max_replicas", "db_max_connections")


# cookiecutter renders an answer given with --no-input as a Jinja template: "{%" alone crashes it.
TEMPLATE_SYNTAX = ("{{", "{%", "{#")


def refuse_template_syntax(name: str, value: object) -> None:
    if isinstance(value, str) and any(marker in value for marker in TEMPLATE_SYNTAX):
        raise AnswerError(name, value, "holds template syntax", "give plain text, without {{, {% or {#")


def refuse_raw_answers_cookiecutter_would_render(raw: Mapping[str, Any], defaults: Mapping[str, Any]) -> None:
    """Before cookiecutter renders the answers: any that is not the template's own default and holds
    {{, {% or {# is refused, as cookiecutter would otherwise run it (or crash on it) as Jinja."""
    for name, value in raw.items():
        if not name.startswith("_") and value != defaults.get(name):
            refuse_template_syntax(name, value)


def refuse_defaults_outside_the_menus(user_defaults: Mapping[str, Any], defaults: Mapping[str, Any]) -> None:
    """A user config's default for a menu must be one of its choices, for a yes/no question yes or no."""
    for name, value in user_defaults.items():
        if isinstance(defaults.get(name), list):
            _choice(name, value, tuple(defaults[name]))
        elif isinstance(defaults.get(name), bool):
            _boolean(name, value)


def _choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise AnswerError(name, value, "is not a choice", "choose one of " + ", ".join(choices))
    return str(value)


def _project_name(value: object) -> str:
    refuse_template_syntax("project_name", value)
    text = str(value).strip()
    if not text or len(text) > 100 or any(unicodedata.category(c).startswith("C") for c in text):
        raise AnswerError(
            "project_name",
            value,
            "is not a usable name",
            "give 1 to 100 printable characters, e.g. My Service",
        )
    return text


def _project_slug(value: object) -> str:
    text = str(value)
    accepted = "give a Python identifier of ASCII letters, digits and _ (e.g. my_service)"
    if not _SLUG.match(text):
        raise AnswerError("project_slug", value, "is not a Python identifier", accepted)
    if keyword.iskeyword(text) or keyword.issoftkeyword(text):
        raise AnswerError("project_slug", value, "is a Python keyword", accepted)
    if text in _SHADOWED:
        raise AnswerError("project_slug", value, "would shadow a module the project imports", accepted)
    return text


def _boolean(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "t", "yes", "y", "on"}:
        return True
    if text in {"0", "false", "f", "no", "n", "off"}:
        return False
    raise AnswerError(name, value, "is not a yes/no answer", "answer yes or no")


def resolve(raw: Mapping[str, Any]) -> Answers:
    """Validate every answer and resolve `auto`; raise TuningError (or its AnswerError) on the first that cannot."""
    framework = _choice("framework", raw.get("framework"), compat.FRAMEWORKS)
    asked_interface = _choice("interface", raw.get("interface"), ("auto", *compat.INTERFACES))
    asked_server = _choice("server", raw.get("server"), ("auto", *compat.SERVERS))
    workload = _choice("workload", raw.get("workload"), compat.WORKLOADS)
    static = _choice("static_strategy", raw.get("static_strategy"), compat.STATIC_STRATEGIES)
    python_version = _choice("python_version", raw.get("python_version"), compat.PYTHON_VERSIONS)
    project_name = _project_name(raw.get("project_name", ""))
    project_slug = _project_slug(raw.get("project_slug", ""))
    use_kubernetes = _boolean("use_kubernetes", raw.get("use_kubernetes", False))
    cpus = values.parse_cpus(raw.get("cpu_limit", ""), "cpu_limit")
    memory = values.parse_memory(raw.get("memory_limit", ""), "memory_limit")

    interface, interface_reason = compat.resolve_interface(framework, asked_interface, asked_server)
    server, server_reason = compat.resolve_server(interface, asked_server, workload)

    figures = records.memory_figures(framework, server)
    plan = tuning.plan(cpus, memory, framework, interface, server, workload, **figures)
    if not plan.fits_memory:
        least = tuning.minimum_memory_bytes(**figures)
        raise AnswerError(
            "memory_limit",
            raw.get("memory_limit"),
            f"is too small for one {framework} worker under {server}",
            f"give at least {-(-least // values.MIB)}MiB"
            f" ({records.FRAMEWORKS[framework].memory_mib} MiB a worker + {records.server_memory_mib(server)} MiB"
            f" for {server} and its metrics + {tuning.MEMORY_HEADROOM:.0%} headroom)",
        )
    # Checked after the rest, in the order asked: these are the last questions.
    database = _choice("database", raw.get("database", "none"), compat.DATABASES)
    tls = _choice("tls", raw.get("tls", "none"), compat.TLS_MODES)
    # A question not answered yet (its default is rendered when it is asked) takes that default.
    max_replicas = values.parse_replicas(raw.get("max_replicas", default_for("max_replicas", raw)), "max_replicas")
    if use_kubernetes and max_replicas < compat.MIN_REPLICAS:
        raise AnswerError(
            "max_replicas",
            raw.get("max_replicas"),
            f"is below the {compat.MIN_REPLICAS} replicas the Kubernetes HPA keeps",
            f"give {compat.MIN_REPLICAS} or more, or no Kubernetes manifests",
        )
    budget = None
    if database != "none":
        budget = tuning.Database(
            values.parse_connections(
                raw.get("db_max_connections", default_for("db_max_connections", raw)), "db_max_connections"
            ),
            max_replicas,
        )
        plan = tuning.plan(cpus, memory, framework, interface, server, workload, **figures, database=budget)
    return Answers(
        project_name=project_name,
        project_slug=project_slug,
        framework=framework,
        interface=interface,
        interface_reason=interface_reason,
        server=server,
        server_reason=server_reason,
        workload=workload,
        cpus=cpus,
        memory_limit_bytes=memory,
        static_strategy=static,
        static_package=compat.STATIC_PACKAGE[interface] if static == "whitenoise" else None,
        python_version=python_version,
        use_kubernetes=use_kubernetes,
        database=database,
        tls=tls,
        max_replicas=max_replicas,
        db_max_connections=budget.max_connections if budget else None,
        plan=plan,
    )


def problem_with(name: str, given: Mapping[str, Any], defaults: Mapping[str, Any]) -> values.TuningError | None:
    """What is wrong with answer `name` given the answers so far (the defaults stand in for those not
    given yet), or None. Only a problem of `name` itself counts: the others are asked about in turn."""
    try:
        resolve({**defaults, **given})
    except values.TuningError as error:
        return error if error.name == name else None
    return None


def refuse(error: values.TuningError) -> NoReturn:
    """Stop cookiecutter with the one-line message: no traceback, and (early enough) no directory."""
    print(f"pyserve-template: {error}", file=sys.stderr)
    raise SystemExit(1)


def resolve_or_refuse(raw: Mapping[str, Any]) -> Answers:
    try:
        return resolve(raw)
    except values.TuningError as error:
        refuse(error)
