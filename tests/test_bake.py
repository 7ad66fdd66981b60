"""Every supported combination bakes into a clean project that holds exactly what its answers chose."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from pyserve_template import (
    PROJECT_TEMPLATE,
    RUNTIME_ROOT,
    TEMPLATE_ROOT,
    answers,
    compat,
    cruft_record,
    records,
    runtime_upgrade,
    strays,
    tuning,
    values,
)
from pyserve_template.baking import dependencies, project_venv, run_cookiecutter
from pyserve_template.environment import environment_table
from pyserve_template.matrix import DATABASE_VARIATIONS, ONE_PER_SERVER, PRODUCT, STATIC_VARIATIONS, TLS_VARIATIONS

from .conftest import COOKIECUTTER_JSON, context, variation_id

BASELINE_FRAMEWORK = COOKIECUTTER_JSON["framework"][0]


def serves_the_baseline(server: str) -> bool:
    return any(compat.supports(BASELINE_FRAMEWORK, interface, server) for interface in compat.INTERFACES)


# One- and two-key variations of the baseline, each named by what it changes.
VARIATIONS: list[dict[str, str]] = [
    {},
    *({"framework": framework} for framework in compat.FRAMEWORKS),
    {"framework": "django", "interface": "asgi"},
    {"framework": "django", "server": "uvicorn"},  # interface=auto follows the server to ASGI
    # Each server on the baseline, or on its own tested stack where it cannot serve the baseline's framework.
    *({"server": server} if serves_the_baseline(server) else ONE_PER_SERVER[server] for server in compat.SERVERS),
    *({"workload": workload} for workload in compat.WORKLOADS),
    *({"static_strategy": static} for static in compat.STATIC_STRATEGIES),
    {"static_strategy": "whitenoise", "framework": "flask"},
    {"static_strategy": "whitenoise", "framework": "django"},
    {"static_strategy": "whitenoise", "framework": "django", "interface": "asgi"},
    {"static_strategy": "cdn", "framework": "django"},
    {"static_strategy": "none", "framework": "django"},
    *({"python_version": version} for version in compat.PYTHON_VERSIONS),
    {"use_kubernetes": "yes"},
    {"use_kubernetes": "yes", "cpu_limit": "0.5"},
    {"cpu_limit": "0.5", "memory_limit": "256MiB"},
    {"cpu_limit": "2", "memory_limit": "1.5G"},
    {"cpu_limit": "250m", "memory_limit": "768"},
    {"cpu_limit": "64", "memory_limit": "2GiB", "framework": "flask"},
    {"project_name": "Billing API v2", "project_slug": "billing"},
    {"project_name": '2nd "Quoted" Service'},
    {"project_name": "🌀 Weather"},  # beyond U+FFFF: JSON's surrogate escapes are not TOML
    *DATABASE_VARIATIONS,
    *TLS_VARIATIONS,
]

# Jinja left unrendered; GitHub Actions' own expressions, ${{ ... }}, are meant to stay.
UNRENDERED = re.compile(r"(?<!\$)\{\{|\{%|\{#|cookiecutter\.")
TEMPLATE_DEPLOY = PROJECT_TEMPLATE / "deploy"


def project_files(project: Path) -> list[Path]:
    return [path for path in project.rglob("*") if path.is_file()]


def answers_of(project: Path) -> dict[str, dict[str, object]]:
    return tomllib.loads((project / "deploy" / "stack.toml").read_text())


def check_project(project: Path, changes: dict[str, str]) -> None:
    asked = context(**changes)
    stack = answers_of(project)
    framework, interface, server = (stack["stack"][key] for key in ("framework", "interface", "server"))
    static, slug = asked["static_strategy"], project.name
    package, deploy = project / slug, project / "deploy"

    for path in project_files(project):
        text = path.read_text(encoding="utf-8")
        assert not UNRENDERED.search(text), f"unrendered template syntax in {path.relative_to(project)}"
        if path.suffix == ".py":
            ast.parse(text, filename=str(path))

    assert compat.supports(framework, interface, server)
    assert stack["stack"]["workload"] == asked["workload"]

    # What the answers chose is there, and nothing they did not.
    assert not (package / "_frameworks").exists() and not (deploy / "_servers").exists()
    for chosen_files, others, folder in (
        (records.FRAMEWORKS[framework].files, records.FRAMEWORKS.values(), package),
        (records.SERVERS[server].files, records.SERVERS.values(), deploy),
    ):
        assert all((folder / file).is_file() for file in chosen_files)
        assert not any((folder / file).exists() for other in others for file in set(other.files) - set(chosen_files))
    assert (project / "manage.py").exists() == (framework == "django")
    nginx_serves_static = static in {"nginx", "cdn"}
    assert (deploy / "nginx" / "templates" / "locations" / "static.conf.template").exists() == nginx_serves_static
    assert (package / "static_files.py").exists() == (static == "whitenoise")
    assert (package / "static").exists() == (static != "none")
    assert (deploy / "k8s").exists() == (asked["use_kubernetes"] == "yes")
    with_database = asked["database"] != "none"
    assert (package / "database.py").exists() == (with_database and framework != "django")
    assert ("\n  db:\n" in (project / "compose.yaml").read_text()) == with_database
    # The sample's schema and its release step, with a database only: Django's models and
    # migrations, or yoyo's SQL with squawk's settings.
    migrations = records.FRAMEWORKS[framework].migrations
    assert (package / "migrations").is_dir() == ("\n  migrate:\n" in (project / "compose.yaml").read_text())
    assert (package / "migrations").is_dir() == (project / "tests" / "test_migrations.py").exists() == with_database
    assert (package / "models.py").exists() == (with_database and migrations.tool == "django")
    assert (project / ".squawk.toml").exists() == (with_database and migrations.tool == "yoyo")

    requirements = dependencies(project)
    assert set(records.FRAMEWORKS[framework].requirements_for(static, interface)) <= set(requirements)
    assert set(records.SERVERS[server].requirements_for(interface)) <= set(requirements)
    if static == "whitenoise":
        assert compat.STATIC_REQUIREMENT[compat.STATIC_PACKAGE[interface]] in requirements
    assert (
        set(compat.DATABASE_REQUIREMENTS) <= set(requirements) if with_database else "psycopg" not in str(requirements)
    )
    assert set(migrations.requirements) <= set(requirements) if with_database else "yoyo" not in str(requirements)
    # No record ships: they are the template's.
    assert not list(project.rglob(records.SERVER_RECORD)) and not list(project.rglob(records.FRAMEWORK_RECORD))

    # The README states the plan deploy/tuning/ computes for these answers, the database's budget and
    # the WebSockets an ASGI stack expects too.
    expected_long_lived = tuning.DEFAULT_LONG_LIVED_CONNECTIONS if interface == "asgi" else 0
    assert stack.get("connections", {}).get("expected", 0) == expected_long_lived
    database = None
    if with_database:
        given = {
            name: asked.get(name) or answers.default_for(name, asked) for name in ("max_replicas", "db_max_connections")
        }
        database = tuning.Database(values.parse_connections(given["db_max_connections"]), int(given["max_replicas"]))
        assert stack["database"] == {
            "engine": asked["database"],
            "max_connections": database.max_connections or "none",
            "max_replicas": database.max_replicas,
            "migrations": migrations.tool,
        }
    plan = tuning.plan(
        values.parse_cpus(asked["cpu_limit"]),
        values.parse_memory(asked["memory_limit"]),
        framework,
        interface,
        server,
        asked["workload"],
        **records.memory_figures(framework, server),
        **records.long_lived_figures(server, expected_long_lived),
        database=database,
    )
    readme = (project / "README.md").read_text()
    assert f"workers x threads: {plan.workers} x {plan.threads}" in readme
    assert plan.reasons["workers"] in readme and "<!-- plan -->" not in readme
    assert ("connections" in plan.reasons) == (interface == "asgi")
    if interface == "asgi":
        assert f"open     {plan.reasons['connections']}" in readme
    if with_database:
        assert f"database {plan.reasons['database']}" in readme
    # ... and what the stack does when things go wrong, with this server's caveats.
    for fault, (text, _) in compat.fault_behaviour(server, interface).items():
        assert f"- **{compat.FAULT_NAMES[fault]}**: {text}." in readme
    assert "<!-- faults -->" not in readme
    # ... and what the engine adds (the container fault tests' figures).
    for fault, text in compat.engine_fault_behaviour(server).items():
        assert f"- **{compat.ENGINE_FAULT_NAMES[fault]}**: {text}." in readme
    assert "<!-- engine faults -->" not in readme
    # ... and every environment variable it reads, from pyserve_runtime.settings's VARIABLES.
    assert environment_table(interface, framework, asked["database"]) in readme
    assert "<!-- environment -->" not in readme
    assert ("`WS_CONNECTIONS`" in readme) == (interface == "asgi")
    assert ("`DB_MAX_CONNECTIONS`" in readme) == with_database


@pytest.mark.parametrize("changes", VARIATIONS, ids=variation_id)
def test_variation_bakes(bake, changes: dict[str, str]) -> None:
    check_project(bake(**changes), changes)


@pytest.mark.parametrize("changes", PRODUCT, ids=variation_id)
def test_every_supported_stack_bakes(bake, changes: dict[str, str]) -> None:
    check_project(bake(**changes), changes)


def files_under(root: Path) -> dict[str, bytes]:
    ignored = {"__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache"}
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in root.rglob("*")
        if path.is_file() and not ignored & set(path.relative_to(root).parts) and path.suffix != ".pyc"
    }


TEMPLATE_RUNTIME = {
    relative: content
    for relative, content in files_under(RUNTIME_ROOT).items()
    if relative.split("/")[0] in runtime_upgrade.VENDORED_FILES
}


@pytest.mark.parametrize("changes", PRODUCT, ids=variation_id)
def test_the_runtime_is_the_same_in_every_bake(bake, changes: dict[str, str]) -> None:
    """vendor/pyserve-runtime is the template's runtime/ as it is, and the team's deploy/ Python (a
    server's config) its template folder's: what a bake chose reaches them through deploy/stack.toml."""
    project = bake(**changes)
    assert files_under(project / runtime_upgrade.VENDOR_DIR) == TEMPLATE_RUNTIME
    server = tomllib.loads((project / "deploy" / "stack.toml").read_text())["stack"]["server"]
    for baked in sorted((project / "deploy").glob("*.py")):
        assert baked.read_bytes() == (TEMPLATE_DEPLOY / "_servers" / server / baked.name).read_bytes(), baked.name


def test_auto_picks_are_explained(bake) -> None:
    readme = (bake(framework="django", server="uvicorn") / "README.md").read_text()
    assert "interface: ASGI (auto: django's interface that uvicorn serves)" in readme
    # server=auto: the benchmark's choice for the interface and workload, with its figures.
    readme = (bake(framework="flask", workload="mixed") / "README.md").read_text()
    server, reason = compat.auto_server("wsgi", "mixed")
    assert f"server: {server} (auto: {reason})" in readme
    assert "req/s" in reason


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=" ".join)
def test_generated_python_passes_ruff(bake, command: list[str]) -> None:
    """`make lint` on every generated variant, in one ruff run with each project's own settings."""
    projects = [bake(**changes) for changes in [*VARIATIONS, *PRODUCT, *STATIC_VARIATIONS]]
    result = subprocess.run(
        [sys.executable, "-m", "ruff", *command, "--no-cache", *map(str, projects)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# Each server over each interface it serves: the runtime's files differ only by server.
TYPED_STACKS = [
    {"framework": framework, "server": server, "interface": interface}
    for server, record in records.SERVERS.items()
    for interface, framework in (("wsgi", "flask"), ("asgi", "fastapi"))
    if interface in record.interfaces
]


@pytest.mark.parametrize("changes", TYPED_STACKS, ids=variation_id)
def test_the_runtime_passes_strict_type_checking(bake, changes: dict[str, str], tmp_path: Path) -> None:
    """mypy --strict on the vendored runtime, against the packages the project installs (those that
    ship no types are Any: --ignore-missing-imports)."""
    project = bake(**changes)
    python = project_venv(project) / "bin" / "python"
    command = ["--strict", "--ignore-missing-imports", "--python-executable", str(python), "--cache-dir", str(tmp_path)]
    result = subprocess.run(
        [sys.executable, "-m", "mypy", *command, "-p", "pyserve_runtime"],
        cwd=project / runtime_upgrade.VENDOR_DIR / "src",
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "changes",
    [
        *({"framework": framework} for framework in compat.FRAMEWORKS),
        *STATIC_VARIATIONS,
        # The app imports, and its tests pass, without a database: only /api/db and /readyz need one.
        {"database": "postgres", "framework": "django"},
        {"database": "postgres", "framework": "django", "interface": "asgi"},
        {"database": "postgres", "framework": "fastapi"},
    ],
    ids=variation_id,
)
def test_generated_project_tests_pass(fresh_bake, changes: dict[str, str]) -> None:
    """`make test` in the project, with its requirements-dev.txt installed."""
    project = fresh_bake(**changes)
    venv = project_venv(project, dev=True)
    result = subprocess.run(
        ["make", "test", f"PYTHON={venv / 'bin' / 'python'}"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": os.environ["PATH"], "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout


def test_tuning_cli_in_a_generated_project_prints_the_plan(fresh_bake) -> None:
    import json

    project = fresh_bake(framework="django", interface="asgi", server="granian", cpu_limit="0.5", memory_limit="768MiB")
    result = subprocess.run(
        [project_venv(project) / "bin" / "pyserve", "plan", "--json"],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    plan = json.loads(result.stdout)
    assert (plan["cpus"], plan["memory_limit_bytes"], plan["workers"], plan["threads"]) == (0.5, 768 * values.MIB, 1, 1)
    assert plan["reasons"]["workers"].startswith("1 = 2 event loops per CPU (ceil 2 x 0.5)")


def test_a_budget_that_cannot_fit_stops_the_server_at_start_naming_what_fits(fresh_bake) -> None:
    project = fresh_bake(database="postgres", framework="flask")
    env = {"PATH": "/usr/bin:/bin", "DB_MAX_CONNECTIONS": "2", "CPU_LIMIT": "1", "MEMORY_LIMIT": "512MiB"}
    refusal = (
        "DB_MAX_CONNECTIONS: '2' leaves 0 connections per container for 3 workers at 2 replicas (1 and a deploy's"
        " 1 more) once the release step has its 2; give at least 8 (one a worker, and the step's), or fewer"
        " replicas or CPUs"
    )
    pyserve = project_venv(project) / "bin" / "pyserve"
    for command, prefix in (("serve", "serve"), ("plan", "tuning")):
        result = subprocess.run([pyserve, command], cwd=project, capture_output=True, text=True, env=env, check=False)
        assert result.returncode != 0 and result.stderr.strip() == f"{prefix}: {refusal}"


# What running things leaves in a checkout of the template, planted where it would land. Caches
# may hold text that looks like Jinja: they must be copied as they are, then dropped.
LEFT_BY_RUNS = {
    "deploy/__pycache__/settings.cpython-311.pyc": b"\xa7\r\r\n{{ bytecode",
    "loadtest/__pycache__/locustfile.cpython-313.pyc": b"\xf3\r\r\n",
    "{{cookiecutter.project_slug}}/__pycache__/site.cpython-311.pyc": b"\xa7\r\r\n",
    "deploy/served_app.pyc": b"\xa7\r\r\n",
    ".ruff_cache/0.17.5/123": b"{% not a template",
    ".pytest_cache/README.md": b"# {{ pytest's own",
    ".mypy_cache/3.13/deploy/settings.meta.json": b"{#",
    ".venv/lib/python3.13/site-packages/jinja2/x.html": b"{% block x %}",
    ".local/nginx/nginx.pid": b"4242\n",
    "build/static/staticfiles.json": b"{}",
    "loadtest/reports/run_stats.csv": b"Name\n",
    ".env": b"DJANGO_SECRET_KEY={{ oops }}\n",
}


def test_copy_without_render_covers_every_pattern_the_project_ignores() -> None:
    patterns = strays.ignore_patterns(PROJECT_TEMPLATE)
    copied_as_is = set(COOKIECUTTER_JSON["_copy_without_render"])
    assert {strays.copy_without_render_pattern(pattern) for pattern in patterns} <= copied_as_is
    assert {"__pycache__/", "*.py[cod]", ".venv/"} <= set(patterns)


def test_a_bake_ships_nothing_that_runs_left_in_the_template(tmp_path: Path) -> None:
    """A checkout in which something ran bakes exactly what a clean one bakes."""
    copy = tmp_path / "template"
    shutil.copytree(TEMPLATE_ROOT, copy, ignore=shutil.ignore_patterns(".git", ".venv", ".cache", "__pycache__"))
    for relative, content in LEFT_BY_RUNS.items():
        planted = copy / PROJECT_TEMPLATE.name / relative
        planted.parent.mkdir(parents=True, exist_ok=True)
        planted.write_bytes(content)
    (tmp_path / "clean-run").mkdir()
    (tmp_path / "used-run").mkdir()
    clean = run_cookiecutter(tmp_path / "clean-run", {})
    used = run_cookiecutter(tmp_path / "used-run", {}, template=copy)
    assert used.result.returncode == 0, used.result.stderr
    baked = {path.relative_to(used.output_dir).as_posix() for path in used.output_dir.rglob("*")}
    expected = {path.relative_to(clean.output_dir).as_posix() for path in clean.output_dir.rglob("*")}
    # The copy is no git checkout, so it has no commit for cruft's record to name.
    expected.discard(f"my_service/{cruft_record.CRUFT_FILE}")
    assert baked == expected, f"shipped: {sorted(baked - expected)}; missing: {sorted(expected - baked)}"
