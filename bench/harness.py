"""Bake, start, load, stop: one measurement of one contender on one workload.

The app server runs in a fresh cgroup with the container's CPU quota and memory limit
(pyserve_runtime.confine, as `make local CONFINE=1`), behind a real nginx with the project's own config
(written by the project's pyserve_runtime.local). wrk loads nginx on 127.0.0.1 from outside the cgroup.
Everything started is stopped by its process group, and the cgroup is removed.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from pyserve_template import confine, runtime_of, values
from pyserve_template.baking import free_port, project_venv, run_cookiecutter
from pyserve_template.compat import Stack
from pyserve_template.postgres import ConnectionWatch, Postgres

from .contenders import Contender, Launch, Limits
from .workloads import CSS, DB_BUDGET, STATIC_ROUTE_APP, Workload

WRK_SCRIPT = Path(__file__).with_name("wrk_report.lua")
SETTLE_TIMEOUT = 30  # nginx answers 504 past its proxy_read_timeout (30 s) anyway

# "Through the app": the framework's own static route, what a template without a static strategy
# does. It is mounted at /app-static/ so that nginx proxies it (nginx serves /static/ itself).
STATIC_ROUTE_MODULE = {
    "flask": """
from flask import send_from_directory

from {package}.app import app
from {package} import site


@app.get("/app-static/<path:name>")
def app_static(name):
    return send_from_directory(site.static_root(), name)
""",
    "fastapi": """
from fastapi.staticfiles import StaticFiles

from {package}.app import app
from {package} import site

app.mount("/app-static", StaticFiles(directory=site.static_root()))
""",
}


@dataclass(frozen=True)
class Bake:
    project: Path
    venv: Path
    app_module: str
    css: str  # css/site.<hash>.css, as collected

    @property
    def python(self) -> str:
        return str(self.venv / "bin" / "python")


@dataclass(frozen=True)
class Load:
    connections: int  # wrk's, all asking back to back
    seconds: float  # measured
    warm_up: float  # seconds of load before, not measured


@dataclass
class Measurement:
    stack: str  # the interface: wsgi or asgi
    framework: str
    server: str
    workload: str
    contender: str
    cpus: float  # the cgroup's quota
    connections: int  # wrk's
    round: int
    requests_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int
    requests: int
    peak_memory_mib: float | None
    oom_kills: int
    cpu_ms_per_request: float | None
    workers: int  # processes in the cgroup under load: the master, its workers and what runs beside them
    note: str = ""
    db_connections: int | None = None  # the app's most connections at once in pg_stat_activity
    db_refused: int | None = None  # connections PostgreSQL refused for want of a slot
    parts: str = ""  # the parts of the run that asked for it, comma-separated (bench/plan.py)


def bake(workdir: Path, stack: Stack, limits: Limits, workload: Workload) -> Bake:
    """A project as a user bakes it (the defaults with these answers), its venv and
    static files. Baked afresh every run, so that it is what the template renders now."""
    name = f"{stack.id}-{workload.answer}-{workload.static_strategy}{'-db' if workload.database else ''}"
    framework, server = stack.framework, stack.server
    target = workdir.resolve() / name
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    answers = {
        "project_name": f"bench {name}", "framework": framework, "interface": stack.interface, "server": server,
        "workload": workload.answer,
        "cpu_limit": f"{limits.cpus:g}", "memory_limit": limits.memory, "static_strategy": workload.static_strategy,
        **({"database": "postgres", "db_max_connections": str(DB_BUDGET)} if workload.database else {}),
    }  # fmt: skip
    run = run_cookiecutter(target, answers)
    if run.result.returncode != 0:
        raise SystemExit(f"bench: baking {name} failed:\n{run.result.stderr[-3000:]}")
    (project,) = run.output_dir.iterdir()
    venv = project_venv(project)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pyserve_runtime", "static"], cwd=project, check=True)
    if framework in STATIC_ROUTE_MODULE:
        route_module = project / f"{STATIC_ROUTE_APP.partition(':')[0]}.py"
        route_module.write_text(STATIC_ROUTE_MODULE[framework].format(package=project.name))
    with (project / "deploy" / "stack.toml").open("rb") as handle:
        module = tomllib.load(handle)["app"]["module"]
    manifest = json.loads((project / "build" / "static" / "staticfiles.json").read_text())
    return Bake(project, venv, module, manifest["paths"]["css/site.css"])


def project_local(project: Path) -> ModuleType:
    """The runtime's local.py as it runs in the project: the nginx config exactly as `make local` writes it."""
    return runtime_of(project, "local", f"bench_deploy_{abs(hash(str(project)))}")


def healthy(port: int, timeout: float = 2) -> bool:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/healthz", headers={"Host": "localhost"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def settle(port: int, quick: float = 0.05) -> None:
    """Wait until the app answers at once again. Requests the warm-up left queued (wrk hung up, a
    sync worker still serves them one by one) would otherwise eat into the measured run."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while time.monotonic() < deadline:
        started = time.monotonic()
        if healthy(port, timeout=SETTLE_TIMEOUT) and time.monotonic() - started < quick:
            return
        time.sleep(0.1)


def wrk(port: int, paths: list[str], connections: int, seconds: float) -> dict:
    """wrk against nginx: `connections` clients asking back to back, totals as JSON."""
    command = [
        "wrk", "--threads", "2", "--connections", str(connections), "--duration", f"{seconds:g}s",
        # Past nginx's own 30 s proxy_read_timeout: a slow answer is measured, not dropped by wrk.
        "--timeout", "35s", "--script", str(WRK_SCRIPT), f"http://127.0.0.1:{port}{paths[0]}", "--", *paths,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def measure(
    baked: Bake,
    stack: Stack,
    contender: Contender,
    workload: Workload,
    limits: Limits,
    load: Load,
    log: Path,
    round_: int,
    postgres: Postgres | None = None,
) -> Measurement:
    """One contender on one workload: wrk's totals, the cgroup's peak memory and CPU time per request,
    and with `postgres` the connections the app held."""

    def launch(bind: str) -> Launch:
        return contender.launch(stack.interface, workload.app_module or baked.app_module, bind, limits)

    paths = [path.replace(CSS, baked.css) for path in workload.paths]
    totals = _run(baked, launch, paths, limits, load, log, postgres)
    peak = totals["peak_memory_bytes"]
    where = (stack.interface, stack.framework, stack.server, workload.name, contender.name, limits.cpus,
             load.connections, round_)  # fmt: skip
    if "failed" in totals:
        return Measurement(*where, 0, 0, 0, 0, 0, 0, peak and peak / values.MIB, totals["oom_kills"], None, 0,
                           totals["failed"])  # fmt: skip
    requests = totals["requests"]
    errors = sum(totals[key] for key in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts"))
    cpu = totals["cpu_seconds"]
    return Measurement(
        *where,
        requests_per_s=requests / (totals["duration_us"] / 1e6),
        p50_ms=totals["p50_us"] / 1000,
        p95_ms=totals["p95_us"] / 1000,
        p99_ms=totals["p99_us"] / 1000,
        errors=errors,
        requests=requests,
        peak_memory_mib=peak and peak / values.MIB,
        oom_kills=totals["oom_kills"],
        cpu_ms_per_request=cpu * 1000 / requests if cpu is not None and requests else None,
        workers=totals["processes"],
        db_connections=totals.get("db_connections"),
        db_refused=totals.get("db_refused"),
    )


def _run(
    baked: Bake,
    launch_at: Callable[[str], Launch],
    paths: list[str],
    limits: Limits,
    load: Load,
    log: Path,
    postgres: Postgres | None,
) -> dict:
    """Start the app server in a new cgroup and nginx in front, load them, stop them: the raw totals."""
    local = project_local(baked.project)
    http_port, app_port = free_port(), free_port()
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in {"PYTHONPATH", "WEB_CONCURRENCY", "WEB_THREADS", "CPU_LIMIT", "MEMORY_LIMIT"}
    }
    env.update(PATH=f"{baked.venv / 'bin'}{os.pathsep}{env['PATH']}", VIRTUAL_ENV=str(baked.venv))
    env.update(HTTP_PORT=str(http_port), APP_PORT=str(app_port))
    # Django refuses to start in production without one, as it should.
    env["DJANGO_SECRET_KEY"] = secrets.token_urlsafe(32)
    if postgres is not None:
        env["DATABASE_URL"] = postgres.fresh_database()
        # The release step, as `make local` runs it before the app: the sample's table behind /api/db.
        migrate = [str(baked.venv / "bin" / "pyserve"), "migrate"]
        subprocess.run(migrate, cwd=baked.project, env=env, check=True, capture_output=True)
    prefix = log.resolve().with_suffix(".nginx")
    config = local.write_nginx_config(prefix, local.nginx_values(env))
    # The server's run-time files (its metrics) beside nginx's, not in /tmp where they would stay.
    env["RUNTIME_DIR"] = str(log.resolve().with_suffix(".runtime"))
    launch = launch_at(f"127.0.0.1:{app_port}")
    memory = values.parse_memory(limits.memory)
    confinement = confine.Confinement.create(limits.cpus, memory, f"pyserve-bench-{os.getpid()}")
    totals: dict = {}
    app = nginx = None
    try:
        with log.open("ab") as output:
            app = subprocess.Popen(
                [baked.python, *launch.argv],
                cwd=baked.project,
                env={**env, **launch.env},
                stdout=output,
                stderr=subprocess.STDOUT,
                process_group=0,
                preexec_fn=confinement.enter,  # safe: no threads run here
            )
            started = local.wait_until_ready(str(app_port), [app], lambda: False, "/healthz")
            if started:
                nginx = subprocess.Popen(
                    local.nginx_argv(local.find_nginx(env), prefix, config),
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    process_group=app.pid,
                )
                started = local.wait_until_ready(str(http_port), [app, nginx], lambda: False, "/healthz")
        if not started:
            totals["failed"] = f"did not start: see {log}"
        else:
            if load.warm_up:
                wrk(http_port, paths, load.connections, load.warm_up)
                settle(http_port)
            cpu_before = confinement.cpu_seconds()
            if postgres is None:
                totals = wrk(http_port, paths, load.connections, load.seconds)
            else:
                refused_before = postgres.refusals()
                with ConnectionWatch(postgres).running() as watch:
                    totals = wrk(http_port, paths, load.connections, load.seconds)
                totals.update(db_connections=watch.most, db_refused=postgres.refusals() - refused_before)
            cpu_after = confinement.cpu_seconds()
            totals["processes"] = len(confinement.pids())
            totals["cpu_seconds"] = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    finally:
        if app is not None:
            # As `make local` stops: the server SIGTERM, nginx SIGQUIT, then the group killed.
            local.stop([app, nginx] if nginx else [app], app.pid)
        totals["peak_memory_bytes"], totals["oom_kills"] = confinement.peak_memory(), confinement.oom_kills()
        confinement.remove()
    return totals
