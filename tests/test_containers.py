"""The containers users ship, on real engines that the tests start (tests/engine.py): each project's
own `make container-test` on Docker for every server, WSGI and ASGI, Django and every static
strategy, a PostgreSQL database, every offered Python, and on podman; the generated CI workflow's
steps as written; replicas spread and scaled down under load; a release whose migration fails, run
on its own while the version before serves; an app from PyPI that has no /healthz,
served by APP_MODULE alone, on the host and in containers; and images built from the lock: exactly
its versions, a stale lock refused, the dependency layer reused after a code-only change and uv's
downloads after a new dependency."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import yaml
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from pyserve_template import settings
from pyserve_template.baking import add_dependency, add_dependency_without_locking, project_venv, uv

from .conftest import variation_id
from .containers import (
    CONTAINER_TEST_TIMEOUT,
    access_lines,
    compose_stack,
    dns_valid_seconds,
    run_workflow_steps,
    upstream_that_answered,
)
from .engine import Engine, PodmanEngine, base_images, project_images
from .load import SteadyLoad
from .prometheus import Autoscaler, pod_labels, running_prometheus
from .stack import running_stack

pytestmark = pytest.mark.e2e

# Every server once, WSGI and ASGI, Django (collectstatic at build), each static strategy, each Python.
# The baseline (fastapi, ASGI, uvicorn, static files from nginx) runs through its CI workflow, below.
STACKS = [
    {"framework": "django", "static_strategy": "whitenoise"},  # WSGI, gunicorn gthread
    {"framework": "flask", "server": "granian", "static_strategy": "cdn"},
    {"framework": "starlette", "server": "hypercorn", "static_strategy": "none", "cpu_limit": "0.5"},
    {"python_version": "3.14"},  # the baseline on the newer Python
    # Three services: PostgreSQL healthy first, /api/db through Django's pool, the volume outliving
    # `down`; with tls=acme, whose acme stage is built too and whose edge is checked over plain HTTP
    # (tests/test_tls.py runs it with a CA).
    {"framework": "django", "database": "postgres", "tls": "acme"},
]
# The same smoke test through podman's Docker-compatible API: WSGI and ASGI, nginx finding podman's DNS.
PODMAN_STACKS = [
    {},
    {"framework": "django", "server": "granian", "static_strategy": "nginx"},
]
# An app that knows nothing of this template: a Flask app from PyPI with no /healthz.
FOREIGN_APP = {"requirement": "httpbin==0.10.4", "module": "httpbin:app", "path": "/get"}
# Scaling: replicas, and clients asking back to back while it scales down.
REPLICAS = 3
LOAD_CLIENTS = 4


def check_smoke_test_output(output: str, engine: Engine) -> None:
    """What `make container-test` printed: it passed, with the images' sizes and the DNS nginx found."""
    assert "container-test: passed" in output, output[-6000:]
    assert re.search(r"images: app \d+ MB, nginx \d+ MB", output), output
    resolver = re.search(r"nginx-start: .*resolver (\S+),", output)
    # Docker's DNS, or podman's (aardvark-dns on the network's gateway), from the container's resolv.conf.
    assert resolver and (resolver.group(1) == "127.0.0.11") == (engine.kind == "docker"), output


def container_test(project: Path, engine: Engine) -> str:
    """The project's own `make container-test` against `engine`; its output, having passed."""
    engine.ensure_images(project_images(project))
    command = ["make", "container-test", f"PYSERVE={project_venv(project) / 'bin' / 'pyserve'}"]
    result = subprocess.run(
        command, cwd=project, env=engine.env, capture_output=True, text=True, timeout=CONTAINER_TEST_TIMEOUT
    )
    output = result.stdout + result.stderr
    print(output)
    assert result.returncode == 0, output[-6000:]
    check_smoke_test_output(output, engine)
    return output


@pytest.mark.container
@pytest.mark.parametrize("changes", STACKS, ids=variation_id)
def test_make_container_test_passes_on_docker(fresh_bake, docker: Engine, changes: dict[str, str]) -> None:
    container_test(fresh_bake(**changes), docker)


@pytest.mark.container
@pytest.mark.parametrize("changes", PODMAN_STACKS, ids=variation_id)
def test_make_container_test_passes_on_podman(fresh_bake, podman: PodmanEngine, changes: dict[str, str]) -> None:
    with podman.healthchecks():
        container_test(fresh_bake(**changes), podman)


@pytest.mark.container
def test_the_projects_ci_workflow_runs_here(fresh_bake, docker: Engine, tmp_path: Path) -> None:
    """The generated .github/workflows/ci.yml: its `run:` steps in order and as written, with the
    runner's shell flags, in a fresh venv (what setup-python gives the runner) on the Docker engine:
    install the tools, lint, tests, then both images, compose and a load test with its thresholds."""
    project = fresh_bake()
    workflow = yaml.safe_load((project / ".github" / "workflows" / "ci.yml").read_text())
    steps = [step["run"] for step in workflow["jobs"]["test"]["steps"] if "run" in step]
    docker.ensure_images(project_images(project))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {**docker.env, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}", "VIRTUAL_ENV": str(venv)}
    output = run_workflow_steps(steps, project, env)
    assert steps[-1] == "make container-test LOADTEST=1"
    check_smoke_test_output(output, docker)
    assert re.search(r"container-test: make loadtest for \d+s: loadtest: passed", output), output


def bake_with_foreign_app(fresh_bake) -> Path:
    """A Flask project whose requirements add the foreign app: the user's "add your dependencies"."""
    project = fresh_bake(framework="flask", static_strategy="none")
    add_dependency(project, FOREIGN_APP["requirement"])
    return project


def test_an_app_without_healthz_runs_by_app_module_alone_on_the_host(fresh_bake) -> None:
    project = bake_with_foreign_app(fresh_bake)
    with running_stack(project, project_venv(project), {"APP_MODULE": FOREIGN_APP["module"]}) as stack:
        assert stack.get(FOREIGN_APP["path"]).status == 200
        assert stack.get("/healthz").status == 404  # it really has none: make local waited on /.alive
        healthcheck = subprocess.run(
            [str(project_venv(project) / "bin" / "pyserve"), "healthcheck"],
            cwd=project,
            env={**os.environ, "APP_MODULE": FOREIGN_APP["module"], "APP_PORT": str(stack.app_port)},
            capture_output=True,
            text=True,
            check=False,
        )
        assert healthcheck.returncode == 0, healthcheck.stderr


@pytest.mark.container
def test_an_app_without_healthz_runs_by_app_module_alone_in_containers(fresh_bake, docker: Engine) -> None:
    """compose.override.yaml sets APP_MODULE, as a user would; the stack still comes up healthy."""
    project = bake_with_foreign_app(fresh_bake)
    (project / "compose.override.yaml").write_text(
        f'services:\n  app:\n    environment:\n      APP_MODULE: "{FOREIGN_APP["module"]}"\n'
    )
    with compose_stack(project, docker, "foreign-app") as stack:
        stack.up()  # both healthy: the app's healthcheck needed no /healthz
        assert stack.get(FOREIGN_APP["path"]).status == 200
        assert stack.get("/healthz").status == 404


@pytest.mark.container
@pytest.mark.parametrize("kind", ["docker", "podman"])
def test_replicas_share_requests_and_scaling_down_under_load_fails_no_get(
    fresh_bake,
    request: pytest.FixtureRequest,
    kind: str,
    tmp_path: Path,
) -> None:
    """`up --scale app=3`: nginx finds the replicas through the engine's own DNS and spreads requests
    over all three, and a real Prometheus scrapes each one's metrics endpoint for the autoscaler's
    query; back down to one while GETs keep coming: none fails."""
    engine: Engine = request.getfixturevalue(kind)
    project = fresh_bake(use_kubernetes="yes")
    with engine.healthchecks(), compose_stack(project, engine, f"scale-{kind}") as stack:
        stack.up("--scale", f"app={REPLICAS}")
        for number in range(20 * REPLICAS):
            assert stack.get(f"/api/io?ms=1&n={number}").status == 200
        answered_by = Counter(
            upstream_that_answered(line)
            for line in access_lines(stack.logs("nginx"))
            if line["path"] == "/api/io" and line["status"] == 200
        )
        assert len(answered_by) == REPLICAS, answered_by

        statuses: Counter[str] = Counter()
        stopping = threading.Event()

        def keep_asking() -> None:
            while not stopping.is_set():
                try:
                    statuses[str(stack.get("/api/io?ms=20").status)] += 1
                except OSError as error:
                    statuses[repr(error)] += 1

        clients = [threading.Thread(target=keep_asking) for _ in range(LOAD_CLIENTS)]
        for client in clients:
            client.start()
        try:
            time.sleep(1)
            in_flight = autoscaler_query_values(project, engine, stack.containers("app"), tmp_path)
            stack.run("up", "--detach", "--wait", "--no-recreate", "--scale", "app=1")
            time.sleep(dns_valid_seconds(project) + 1)  # past nginx's cached answer, which lists the others
        finally:
            stopping.set()
            for client in clients:
                client.join(timeout=60)
        assert len(stack.containers("app")) == 1
        errors = [line for line in stack.logs("nginx").splitlines() if "[error]" in line]
        assert set(statuses) == {"200"} and statuses["200"] > 100, (statuses, "\n".join(errors[-12:]))
        # The ScaledObject's query sums what every replica's workers report, and sees the load.
        pods, summed, by_series = in_flight
        assert pods == REPLICAS and summed == by_series and max(summed) > 0, in_flight
        print(f"{kind}: answered by {dict(answered_by)}; while scaling down: {dict(statuses)}; in flight {summed}")


def autoscaler_query_values(
    project: Path, engine: Engine, containers: list[str], directory: Path
) -> tuple[int, list[float], list[float]]:
    """The generated ScaledObject's query, evaluated for 3 s by a real Prometheus on this host that
    scrapes each app container's metrics port on the stack's network, labelled as a pod: the pods
    its series come from, its values, and the sums of the series under its sum() at the same times."""
    autoscaler = Autoscaler.of(project)
    name, query = autoscaler.deployment, autoscaler.query
    address = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
    addresses = [engine.docker("inspect", "--format", address, container).stdout.strip() for container in containers]
    targets = {f"{ip}:{settings.DEFAULT_METRICS_PORT}": pod_labels(name, number) for number, ip in enumerate(addresses)}
    assert query.startswith("sum(") and query.endswith(")"), query
    with running_prometheus(targets, directory) as prometheus:
        started = time.time()
        time.sleep(3)
        ended = time.time()
        summed = [value for _, value in prometheus.query_range(query, started, ended)]
        series = prometheus.series_range(query.removeprefix("sum(").removesuffix(")"), started, ended)
    by_time: dict[float, float] = {}
    for each in series:
        for at, value in each["values"]:
            by_time[at] = by_time.get(at, 0.0) + float(value)
    return len({each["metric"]["pod"] for each in series}), summed, [by_time[at] for at in sorted(by_time)]


# A release whose migration the database refuses (the column it references has no table).
BROKEN_MIGRATION = ("0002_referrer.sql", "ALTER TABLE visits ADD COLUMN referrer bigint REFERENCES nowhere (id);\n")


@pytest.mark.container
def test_a_failed_migration_leaves_the_running_version_serving_on_compose(fresh_bake, docker: Engine) -> None:
    """The next release's step run on its own, from its new image (`docker compose up --build migrate`),
    before compose replaces the app: it fails in one line and exits 1, and the version running answers
    every request of a steady load meanwhile. (Its exit status is read from the container: `compose
    run` and `up` report 0 for it against the Debian engine the tests run.)"""
    project = fresh_bake(database="postgres")
    with compose_stack(project, docker, "release") as stack:
        stack.env["POSTGRES_PASSWORD"] = uuid.uuid4().hex
        stack.up()
        running = stack.container("app")
        name, text = BROKEN_MIGRATION
        (next(project.glob("*/migrations")) / name).write_text(text, encoding="utf-8")
        load = SteadyLoad(stack.http_port, "/api/db?ms=10", 4)
        with load.running():
            time.sleep(1)
            stack.run("up", "--build", "migrate", timeout=CONTAINER_TEST_TIMEOUT)
            time.sleep(1)
        [step] = stack.run("ps", "--all", "--quiet", "migrate").stdout.split()
        exit_code = stack.inspect(step)["State"]["ExitCode"]
        errors = [json.loads(line)["message"] for line in stack.logs("migrate").splitlines() if '"error"' in line]
        print(f"release step: exit {exit_code}, {errors}; {load.count()} requests, {load.failures()[:3]}")
        assert exit_code == 1 and len(errors) == 1, stack.logs("migrate")
        assert errors[0].startswith("migration 0002_referrer failed (yoyo): ") and "nowhere" in errors[0]
        assert load.count() > 20 and not load.failures(), load.failures()[:5]
        assert stack.container("app") == running and stack.get("/api/db?ms=1").status == 200


# The image is built from the lock: exactly its versions, a stale lock refused, dependencies cached.
# Flask allows click from 8.1.3; the lock is set to an older release than the newest on purpose.
OLDER_CLICK = "8.1.8"
STALE_LOCK = "needs to be updated, but `--locked` was provided"
INSTALLED_IN_IMAGE = (
    "import importlib.metadata as m, json, platform; print(json.dumps({'python': platform.python_version(),"
    " 'installed': {d.metadata['Name']: d.version for d in m.distributions()}}))"
)


def build_app_image(project: Path, engine: Engine, tag: str) -> tuple[subprocess.CompletedProcess, float]:
    """`docker build --target app` of the project with BuildKit, as compose builds it; the result and its seconds."""
    engine.ensure_images(base_images(project / "Dockerfile"))
    started = time.monotonic()
    command = ["build", "--progress=plain", "--target", "app", "--tag", tag, str(project)]
    built = engine.docker(*command, timeout=CONTAINER_TEST_TIMEOUT)
    return built, time.monotonic() - started


def locked_for(project: Path, python: str) -> dict[str, str]:
    """What uv.lock installs without the dev groups on `python` (Linux): name -> version."""
    export = uv(project, "export", "--frozen", "--no-dev", "--no-hashes", "--no-header", "--no-annotate")
    environment = {**default_environment(), "python_full_version": python, "python_version": python.rsplit(".", 1)[0]}
    pinned = [Requirement(line) for line in export.splitlines() if "==" in line]
    return {
        canonicalize_name(requirement.name): next(iter(requirement.specifier)).version
        for requirement in pinned
        if requirement.marker is None or requirement.marker.evaluate(environment)
    }


def steps_from_cache(build_output: str) -> dict[str, bool]:
    """BuildKit's steps ("#12 [build 6/8] RUN ...", then "#12 CACHED" when taken from its cache):
    each step's instruction, with whether it was."""
    instructions = dict(re.findall(r"^#(\d+) \[[^\]]+\] (.+)$", build_output, flags=re.MULTILINE))
    cached = set(re.findall(r"^#(\d+) CACHED$", build_output, flags=re.MULTILINE))
    return {instruction: step in cached for step, instruction in instructions.items()}


def change_no_cache_holds(path: Path) -> None:
    """A comment no earlier build has seen: the engine keeps its build cache between runs, and it may
    hold any fixed change (or this very lock) already."""
    with path.open("a") as file:
        file.write(f"\n# {uuid.uuid4()}\n")


def step_cached(steps: dict[str, bool], instruction: str) -> bool:
    """Whether the one step whose instruction holds `instruction` came from the cache."""
    (cached,) = [cached for step, cached in steps.items() if instruction in step]
    return cached


@pytest.mark.container
def test_the_image_holds_exactly_what_the_lock_holds_even_an_older_release(fresh_bake, docker: Engine) -> None:
    project = fresh_bake(framework="flask", static_strategy="none")
    newest_click = locked_for(project, "3.13.0")["click"]
    uv(project, "lock", "--quiet", "--upgrade-package", f"click=={OLDER_CLICK}")
    assert newest_click != OLDER_CLICK
    built, _ = build_app_image(project, docker, "locked-versions")
    try:
        assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-4000:]
        ran = docker.docker("run", "--rm", "locked-versions", "python", "-c", INSTALLED_IN_IMAGE)
        assert ran.returncode == 0, ran.stderr
        image = json.loads(ran.stdout)
    finally:
        docker.docker("image", "rm", "--force", "locked-versions")
    installed = {canonicalize_name(name): version for name, version in image["installed"].items()}
    assert installed.pop("pyserve-runtime")  # from vendor/, at the version its sources say
    assert installed["click"] == OLDER_CLICK
    assert installed == locked_for(project, image["python"])


@pytest.mark.container
def test_a_pyproject_changed_without_relocking_fails_the_build_with_uvs_message(fresh_bake, docker: Engine) -> None:
    project = fresh_bake(framework="flask", static_strategy="none")
    add_dependency_without_locking(project, "six==1.17.0")
    built, _ = build_app_image(project, docker, "stale-lock")
    docker.docker("image", "rm", "--force", "stale-lock")
    assert built.returncode != 0 and STALE_LOCK in built.stdout + built.stderr, built.stdout[-4000:]


@pytest.mark.container
def test_a_code_only_change_rebuilds_on_the_cached_dependency_layer(fresh_bake, docker: Engine) -> None:
    project = fresh_bake(framework="flask", static_strategy="none")
    first, first_s = build_app_image(project, docker, "code-change")
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-4000:]
    change_no_cache_holds(project / project.name / "app.py")
    warm, warm_s = build_app_image(project, docker, "code-change")
    size = docker.docker("image", "inspect", "--format", "{{.Size}}", "code-change").stdout.strip()
    docker.docker("image", "rm", "--force", "code-change")
    assert warm.returncode == 0, warm.stdout[-4000:] + warm.stderr[-4000:]
    print(f"app image: first build {first_s:.1f} s, after a code-only change {warm_s:.1f} s, {int(size) >> 20} MiB")
    steps = steps_from_cache(warm.stderr)
    assert step_cached(steps, "uv sync --locked --no-dev") and step_cached(steps, "COPY --from=build /venv /venv"), (
        steps
    )
    assert not step_cached(steps, "COPY . ."), steps


@pytest.mark.container
def test_a_new_dependency_is_all_a_rebuild_downloads(fresh_bake, docker: Engine) -> None:
    """BuildKit's cache mount keeps uv's downloads between builds: after `uv add`, the dependency
    layer is built again and installs every package, but fetches only the new one (and builds the
    runtime from vendor/, which uv builds each time as a local source)."""
    project = fresh_bake(framework="flask", static_strategy="none")
    change_no_cache_holds(project / "pyproject.toml")
    first, _ = build_app_image(project, docker, "new-dependency")
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-4000:]
    add_dependency(project, "six==1.17.0")
    again, _ = build_app_image(project, docker, "new-dependency")
    docker.docker("image", "rm", "--force", "new-dependency")
    assert again.returncode == 0, again.stdout[-4000:] + again.stderr[-4000:]
    assert not step_cached(steps_from_cache(again.stderr), "uv sync --locked --no-dev")
    installed = re.search(r" Installed (\d+) packages", again.stderr)
    prepared = re.search(r" Prepared (\d+) packages?", again.stderr)  # fetched or built
    assert installed and int(installed.group(1)) == len(locked_for(project, "3.13.0")) + 1, again.stderr[-4000:]
    assert prepared and int(prepared.group(1)) <= 2, again.stderr[-4000:]
