"""The stacks the template's tests and its benchmark run: from the records and the compatibility
table, so that a server or a framework added there is tested everywhere without another edit."""

from __future__ import annotations

from . import compat, records

# Every framework x interface x server that works.
PRODUCT: list[dict[str, str]] = [
    {"framework": stack.framework, "interface": stack.interface, "server": stack.server}
    for stack in compat.supported_stacks()
]

# One stack per server (its record's `tested_with` framework): what the fault, cgroup and
# container fault tests run, between them every server and both interfaces.
ONE_PER_SERVER: dict[str, dict[str, str]] = {
    name: {"framework": server.tested_with, "server": name} for name, server in records.SERVERS.items()
}

# Each static strategy on WSGI and ASGI, Django and not: with PRODUCT (static=nginx), what the
# validators and the end-to-end tests run.
STATIC_VARIATIONS: list[dict[str, str]] = [
    {"static_strategy": "whitenoise", "framework": "flask"},
    {"static_strategy": "whitenoise"},
    {"static_strategy": "whitenoise", "framework": "django"},
    {"static_strategy": "whitenoise", "framework": "django", "interface": "asgi"},
    {"static_strategy": "cdn"},
    {"static_strategy": "cdn", "framework": "django"},
    {"static_strategy": "none"},
    {"static_strategy": "none", "framework": "django"},
]

# Each framework (Django on both interfaces) with a PostgreSQL database, and the budget's edges: what
# the bake, lint and validator tests add to PRODUCT.
DATABASE_VARIATIONS: list[dict[str, str]] = [
    *({"database": "postgres", "framework": name} for name in records.FRAMEWORKS),
    {"database": "postgres", "framework": "django", "interface": "asgi"},
    {"database": "postgres", "db_max_connections": "none"},
    {"database": "postgres", "use_kubernetes": "yes", "max_replicas": "4", "db_max_connections": "40"},
]

# Each way TLS is ended in front of compose's stack, on WSGI and ASGI, with a database: what the bake
# and validator tests add to PRODUCT (tests/test_tls.py runs the ACME edge for real).
TLS_VARIATIONS: list[dict[str, str]] = [
    {"tls": "acme"},
    {"tls": "files", "framework": "django"},
    {"tls": "acme", "framework": "django", "database": "postgres"},
]

# What the benchmark measures: a light framework and Django on each interface, each on every server
# that serves it.
BENCH_FRAMEWORKS: dict[str, tuple[str, ...]] = {"wsgi": ("flask", "django"), "asgi": ("fastapi", "django")}
BENCH_STACKS: list[compat.Stack] = [
    compat.Stack(framework, interface, server)
    for interface, frameworks in BENCH_FRAMEWORKS.items()
    for framework in frameworks
    for server in compat.SERVERS
    if compat.supports(framework, interface, server)
]
