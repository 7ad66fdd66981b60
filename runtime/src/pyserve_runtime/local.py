"""`make local`: the production stack on this machine, in the foreground, on 127.0.0.1.

The app server starts through `pyserve serve`, the command the Dockerfile runs, behind a real nginx
with the generated config (upstream and static root pointed at this checkout). Ports come from
HTTP_PORT (nginx, default 8080) and APP_PORT (app server, default 8000).

`--confine` (`make local CONFINE=1`) runs the app server in a cgroup with the container's CPU and
memory limits (CPU_LIMIT / MEMORY_LIMIT, else the answers), so that it sizes itself from the cgroup
and behaves as it will in its container. It needs a writable cgroup tree (root on Linux); see
confine.py. At the stop it reports the cgroup's peak memory and any OOM kill.

Ctrl-C or SIGTERM stops both gracefully: nginx finishes the responses it is sending, the app server
the requests it is serving. nginx and the app server run in a process group of their own, written to
.local/stack.pgid, so a terminal's Ctrl-C reaches only this script, which then stops them in order.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from . import settings, values
from .confine import CannotConfine, Confinement
from .settings import DEPLOY, PROJECT
from .tuning import inputs, machine
from .tuning.nginx import nginx_connections

# The commands the images run too (the Dockerfile's CMD and its build step), from the project root:
# `pyserve serve` and `pyserve static`, through this Python, whose scripts need not be on PATH.
PYSERVE = (sys.executable, "-m", "pyserve_runtime")
SERVE = ("serve",)
COLLECT_STATIC = ("static",)
RUN_DIR = PROJECT / ".local"
NGINX_DIR = DEPLOY / "nginx"
# The templates that only an nginx serving HTTPS itself renders (nginx_start.sh with TLS=acme or files).
TLS_TEMPLATES = "tls"
PLACEHOLDER = re.compile(r"\$\{(\w+)\}")
# Past the server's graceful stop, whatever is left is killed.
STOP_TIMEOUT = settings.STOP_GRACE_PERIOD_S
START_TIMEOUT = 60
# nginx's own health answer belongs to the server block for hosts it does not serve (nginx's
# healthcheck in its container asks by IP): asked here with a name that never resolves (RFC 2606).
NGINX_HEALTH = ("/nginx-health", "nginx-health.invalid")


def ports(env: dict[str, str]) -> tuple[str, str]:
    chosen = settings.local_settings(env)
    return chosen.http_port, chosen.app_port


def static_root(env: dict[str, str]) -> Path:
    return settings.local_settings(env).static_root


def nginx_values(env: dict[str, str]) -> dict[str, str]:
    """What the nginx templates are rendered with on this machine: loopback only. The keys are the
    placeholders nginx_start.sh renders in the image."""
    http_port, app_port = ports(env)
    try:
        request_timeout_s = settings.request_timeout_s(env)
        log_format = settings.log_format(env)
        long_lived = inputs.long_lived_from_environment(env, machine.load_stack())
        trusted_proxies = settings.trusted_proxies(env)
    except (settings.SettingError, values.TuningError) as error:
        raise SystemExit(f"local: {error}") from None
    return {
        "APP_UPSTREAM": f"127.0.0.1:{app_port}",
        # One app server at a fixed address: the upstream block, nothing to look up.
        "APP_TARGET": "app_pool",
        "RESOLVER": "127.0.0.1",
        "LISTEN_ADDRESS": f"127.0.0.1:{http_port}",
        "REQUEST_TIMEOUT": str(request_timeout_s),
        "SERVER_NAMES": " ".join(settings.local_settings(env).server_names),
        "STATIC_PARENT": str(static_root(env).parent),
        "LOG_FORMAT": log_format,
        **{name: str(count) for name, count in nginx_connections(long_lived).items()},
        # As nginx_start.sh renders TRUSTED_PROXIES: none unless set, nothing in front of nginx here.
        "NGINX_SET_REAL_IP_FROM": "\n".join(f"set_real_ip_from {proxy};" for proxy in trusted_proxies),
        "NGINX_TRUSTED_PROXY_RANGES": "\n".join(f"    {proxy} 1;" for proxy in trusted_proxies),
        # Plain HTTP on loopback, as the image with TLS=none: templates/tls/ is not rendered here.
        "NGINX_SITE_LISTEN": f"listen 127.0.0.1:{http_port};",
    }


def render(template: str, values: dict[str, str]) -> str:
    """envsubst, as the nginx image runs it: ${NAME} for the known names only."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise SystemExit(f"local: unknown placeholder {name} in the nginx templates")
        return values[name]

    return PLACEHOLDER.sub(substitute, template)


def write_nginx_config(prefix: Path, values: dict[str, str]) -> Path:
    """nginx.conf and conf.d/ under `prefix`, laid out as in the image's /etc/nginx/."""
    if prefix.exists():
        shutil.rmtree(prefix)
    conf_dir = prefix / "conf.d"
    conf_dir.mkdir(parents=True)
    shutil.copyfile(NGINX_DIR / "nginx.conf", prefix / "nginx.conf")
    templates = NGINX_DIR / "templates"
    for template in templates.rglob("*.template"):
        relative = template.relative_to(templates)
        if relative.parts[0] == TLS_TEMPLATES:
            continue
        target = conf_dir / relative.with_suffix("")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render(template.read_text(encoding="utf-8"), values), encoding="utf-8")
    return prefix / "nginx.conf"


def find_nginx(env: dict[str, str]) -> str:
    chosen = settings.local_settings(env)
    path = os.pathsep.join([chosen.search_path, "/usr/sbin", "/usr/local/sbin", "/opt/homebrew/bin"])
    found = chosen.nginx or shutil.which("nginx", path=path)
    if not found:
        raise SystemExit("local: nginx not found (install it, e.g. apt-get install nginx, or set NGINX=/path/to/nginx)")
    return found


def nginx_command(nginx: str, prefix: Path, config: Path) -> list[str]:
    """nginx with this run's files: its prefix, config and error log."""
    return [nginx, "-p", f"{prefix}/", "-c", str(config), "-e", "stderr"]


def nginx_argv(nginx: str, prefix: Path, config: Path, worker_processes: str = "auto") -> list[str]:
    """Not in a container, nginx may use every CPU here ("auto"); in its image, start.sh sizes it to its quota."""
    directives = f"daemon off; worker_processes {worker_processes};"
    if os.geteuid() == 0:
        # nginx drops root for `nobody` in its workers, who may not read this checkout (a 0700 home).
        directives += " user root;"
    return [*nginx_command(nginx, prefix, config), "-g", directives]


def collect_static(env: dict[str, str]) -> None:
    if settings.project().static_strategy != "none":
        subprocess.run([*PYSERVE, *COLLECT_STATIC], env=env, cwd=PROJECT, check=True)


def wait_until_ready(
    port: str,
    processes: list[subprocess.Popen[bytes]],
    stopping: Callable[[], bool],
    path: str,
    host: str = "localhost",
) -> bool:
    """`path` answers 200 on 127.0.0.1:port, while every process is alive and no stop was asked."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Host": host})
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and not stopping():
        if any(process.poll() is not None for process in processes):
            return False
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    return False


def stop(processes: list[subprocess.Popen[bytes]], group: int) -> None:
    """All at once, gracefully: the server TERM (finish requests), nginx QUIT (finish responses)."""
    for process, signum in zip(processes, (signal.SIGTERM, signal.SIGQUIT)[: len(processes)], strict=True):
        if process.poll() is None:
            process.send_signal(signum)
    deadline = time.monotonic() + STOP_TIMEOUT
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)  # workers of a server that did not stop in time


def release_step(env: dict[str, str]) -> None:
    """`pyserve migrate` before the app server starts, as compose and Kubernetes run it: with a
    database (DATABASE_URL), the pending migrations; a migration that fails stops here."""
    if settings.project().database == "none" or not settings.database_url(env):
        return
    if subprocess.run([*PYSERVE, "migrate"], env=env, cwd=PROJECT, check=False).returncode:
        raise SystemExit("local: the release step failed (its line above says why); the app server was not started")


def confine(env: dict[str, str]) -> Confinement:
    """A cgroup with the limits the container gets: CPU_LIMIT / MEMORY_LIMIT, else the answers."""
    limits = inputs.plan_from_environment(env, machine.load_stack())
    try:
        confinement = Confinement.create(limits.cpus, limits.memory_limit_bytes)
    except (CannotConfine, values.TuningError) as error:
        raise SystemExit(f"local: --confine: {error}") from None
    print(f"local: the app server runs confined to {confinement.describe()}", flush=True)
    return confinement


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The production stack on this machine (app server + nginx).")
    parser.add_argument("--confine", action="store_true", help="run the app server under the container's limits")
    args = parser.parse_args(argv)
    env = dict(os.environ)
    if settings.project().framework == "django":
        # Django refuses to start without a secret key; a fresh one per run is never written down anywhere.
        env.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
    nginx = find_nginx(env)
    values = nginx_values(env)
    if Path(values["STATIC_PARENT"], "static") != static_root(env):
        raise SystemExit("local: STATIC_ROOT must be a directory named static (nginx serves /static/ from it)")
    collect_static(env)
    release_step(env)
    RUN_DIR.mkdir(exist_ok=True)
    config = write_nginx_config(RUN_DIR / "nginx", values)
    subprocess.run([*nginx_command(nginx, RUN_DIR / "nginx", config), "-t", "-q"], check=True)

    stopping = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    confinement = confine(env) if args.confine else None
    if confinement:
        # The cgroup now carries the limits: the server finds them there, as in its container.
        env = {name: value for name, value in env.items() if name not in ("CPU_LIMIT", "MEMORY_LIMIT")}
    try:
        failed = run_stack(env, nginx, config, confinement, lambda: stopping)
    finally:
        if confinement:
            print(f"local: confined app server: {confinement.usage()}", flush=True)
            confinement.remove()
    if failed:
        print("local: the stack did not come up or a server exited on its own; stopped both", file=sys.stderr)
        return 1
    print("local: stopped", flush=True)
    return 0


def run_stack(
    env: dict[str, str], nginx: str, config: Path, confinement: Confinement | None, stopping: Callable[[], bool]
) -> bool:
    """App server, then nginx, until a stop is asked or one exits; True if it did not stop as asked."""
    http_port, app_port = ports(env)
    # The server's run-time files (its metrics) in this checkout, beside nginx's.
    app_env = {"RUNTIME_DIR": str(RUN_DIR / "app"), **env, "BIND": f"127.0.0.1:{app_port}"}
    app = subprocess.Popen(
        [*PYSERVE, *SERVE],
        env=app_env,
        cwd=PROJECT,
        process_group=0,
        preexec_fn=confinement.enter if confinement else None,  # safe: no threads run here
    )
    group = app.pid
    (RUN_DIR / "stack.pgid").write_text(f"{group}\n", encoding="utf-8")
    processes = [app]
    server = None
    # nginx once the app is ready (healthcheck.py's check), so that its first requests find an upstream.
    if wait_until_ready(app_port, processes, stopping, settings.from_environment(env).readiness_path):
        server = subprocess.Popen(nginx_argv(nginx, RUN_DIR / "nginx", config), env=env, process_group=group)
        processes.append(server)
    if server and wait_until_ready(http_port, processes, stopping, *NGINX_HEALTH):
        metrics = settings.from_environment(app_env).metrics_port
        where = f"app server on 127.0.0.1:{app_port}" + (f", metrics on :{metrics}/metrics" if metrics else "")
        print(f"local: ready on http://localhost:{http_port}/ ({where})", flush=True)
        while not stopping() and all(process.poll() is None for process in processes):
            time.sleep(0.2)
    failed = not stopping()
    stop(processes, group)
    (RUN_DIR / "stack.pgid").unlink(missing_ok=True)
    return failed


if __name__ == "__main__":
    sys.exit(main())
