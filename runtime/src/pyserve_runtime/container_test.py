"""`make container-test`: the images and compose.yaml, built and run on a real engine, used through nginx.

    pyserve container-test [--compose "docker compose"] [--docker docker] [--keep-images] [--loadtest]

It builds both images, starts the stack (`up --wait`) under a project name of its own on a free
port, and checks what production relies on:

- through nginx: the page and its assets with their cache headers, the app's health check,
  /api/io, and 3 slow requests that do not hold up 15 fast ones;
- a request's id (X-Request-ID) in nginx's and the app server's log lines, and every line of both
  logs a JSON object; the metrics on the app's port within compose's network, not through nginx;
- the app's plan line: the limits read from its own cgroup (compose's deploy.resources), and as
  many workers running as it planned; nginx's workers sized to its own CPU limit;
- the app runs as 10001 and nginx as 101, their root filesystems are read-only (only the tmpfs
  mounts take writes), and the app image's code is not writable by the app even without that;
- ASGI projects: a WebSocket echo and a server-sent event stream through nginx, its first event
  not held back;
- X-Forwarded-* from the host change nothing while nginx trusts no proxy (compose's default); with
  nginx restarted to trust the host's address, as a load balancer in front would be, the app is told
  the scheme and the client they name; a Django app accepts a form POST from an https:// page;
- `stop` with a 3 s request in flight lets it finish; `down` leaves no container, network or volume.
- with a database: healthy before the app, the release step (the migrate service) run to its end
  before the app starts, /readyz and /api/db through the pools writing the sample's table, no more
  connections than the plan's, and a row written before `down` (volumes kept) and `up` is still
  there, the release step finding the schema current.

With --loadtest (`make container-test LOADTEST=1`, as the project's CI runs it) `make loadtest` also
runs against the stack for LOCUST_RUN_TIME (default DEFAULT_LOADTEST_RUN_TIME, settings.py), and its
thresholds must hold.

It prints one line per check and exits non-zero on the first that fails. The checks of the
sample app's pages (`probe_app`) are the ones to change when you replace the sample with your app.
Needs Docker (or podman's Docker-compatible API) and Compose v2; stdlib only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import secrets
import shlex
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from .compose_stack import RELEASE_STEP, SERVICES, CheckFailed, ComposeStack, Response, check, free_port
from .settings import (
    DEFAULT_METRICS_PORT,
    LIVENESS_PATH,
    PROJECT,
    container_test_settings,
    from_environment,
    project,
    stack_answers,
)
from .websocket_client import websocket_echo

STACK = stack_answers()
CHOSEN = project()
APP_USER, NGINX_USER = 10001, 101
SLOW_MS, SLOW_REQUESTS, FAST_REQUESTS = 1000, 3, 15
IN_FLIGHT_MS = 3000
ONE_YEAR = 365 * 24 * 3600
# What a load balancer that ends TLS tells nginx about a client (and what a client may forge).
FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
# The sample's first server-sent event is written at once: later than this, something buffers it.
FIRST_EVENT_S = 1.5
ASSET = re.compile(r'(?:href|src)="([^"]+\.(?:css|js|svg|png|jpe?g|gif|webp|ico|woff2?))"')
HASHED = re.compile(r"\.[0-9a-f]{12}\.\w+$")
# What nginx_start.sh writes before nginx starts: the only lines not in LOG_FORMAT.
NGINX_START_LINE = "nginx-start: "
# The server's children that serve no requests: multiprocessing's resource tracker and the metrics
# endpoint (metrics_server.py).
BESIDE_THE_WORKERS = ("resource_tracker", "pyserve_runtime.metrics_server")

# Run inside the nginx container (busybox sh and awk): the user of each of the container's own
# processes, its init and what descends from it (see users_and_read_only).
OWN_USERS = """for status in /proc/[0-9]*/status; do
  awk '/^PPid:/ {parent = $2} /^Uid:/ {user = $2}
       END {if (parent != 0 || FILENAME == "/proc/1/status") print user}' "$status"
done"""

# Run inside the app container (python, no ps there): every process's parent, state, user and command.
PROCESSES = """
import json, os
found = {}
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        state, ppid = open(f"/proc/{pid}/stat").read().rpartition(")")[2].split()[:2]
        uid = next(line.split()[1] for line in open(f"/proc/{pid}/status") if line.startswith("Uid:"))
        command = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\\0", b" ").decode()
    except OSError:
        continue
    found[pid] = {"ppid": int(ppid), "state": state, "uid": int(uid), "command": command}
print(json.dumps(found))
"""


def say(message: str) -> None:
    print(f"container-test: {message}", flush=True)


# --- the checks -------------------------------------------------------------------------------


def probe_app(stack: ComposeStack) -> None:
    """The sample app's pages through nginx: replace these with your app's when you replace the sample."""
    static = STACK["template"]["static_strategy"]
    page = stack.get("/")
    check(page.status == 200, f"/ answered {page.status}")
    check(page.headers.get("X-Content-Type-Options") == "nosniff", "no X-Content-Type-Options from nginx")
    assets = ASSET.findall(page.body.decode())
    if static == "none":
        check(not assets, f"the page links assets but there are no static files: {assets}")
    else:
        check(assets, "the page links no assets")
    for url in assets:
        path = "/static/" + url.partition("/static/")[2]  # a CDN's URL: its origin is nginx's /static/
        asset = stack.get(path, headers={"Accept-Encoding": "gzip"})
        check(asset.status == 200, f"{path} answered {asset.status}")
        check(HASHED.search(path), f"{path} is not content-hashed, so it cannot be cached for long")
        max_age = re.search(r"max-age=(\d+)", asset.headers.get("Cache-Control", ""))
        check(max_age and int(max_age.group(1)) >= ONE_YEAR, f"{path}: Cache-Control {asset.headers}")
    io = stack.get("/api/io?ms=50")
    check(io.status == 200 and b"waited_ms" in io.body, f"/api/io answered {io.status}: {io.body[:200]!r}")
    say(f"page, {len(assets)} assets with a year's cache, /api/io: ok")


def probe_health(stack: ComposeStack) -> None:
    path = from_environment().health_path
    if path:
        response = stack.get(path)
        check(response.status == 200, f"{path} answered {response.status}")
    hidden = stack.get(LIVENESS_PATH)  # the server layer's own answer stays on the app's port
    check(hidden.status == 404, f"{LIVENESS_PATH} answered {hidden.status} through nginx")
    say(f"health check {path or '(the server layer only)'} through nginx, {LIVENESS_PATH} not exposed: ok")


def slow_requests_do_not_hold_up_fast_ones(stack: ComposeStack) -> None:
    fast_path = STACK["app"].get("health_path") or "/"
    paths = [f"/api/io?ms={SLOW_MS}"] * SLOW_REQUESTS + [fast_path] * FAST_REQUESTS
    barrier = threading.Barrier(len(paths))

    def fire(path: str) -> Response:
        barrier.wait()
        return stack.get(path)

    started = time.monotonic()
    with ThreadPoolExecutor(len(paths)) as pool:
        responses = list(pool.map(fire, paths))
    elapsed = time.monotonic() - started
    check(all(response.status == 200 for response in responses), f"{[r.status for r in responses]}")
    slowest_fast = max(response.seconds for response in responses[SLOW_REQUESTS:])
    check(elapsed < SLOW_MS / 1000 * 1.6, f"{len(paths)} requests took {elapsed:.2f} s")
    check(slowest_fast < 0.5, f"a fast request waited {slowest_fast:.2f} s behind the slow ones")
    say(f"{SLOW_REQUESTS} slow + {FAST_REQUESTS} fast at once: {elapsed:.2f} s, fast ones <= {slowest_fast:.2f} s")


def log_objects(stack: ComposeStack, service: str) -> list[dict[str, Any]]:
    """The service's log as JSON objects; fails on any other line but nginx's start script's own."""
    objects, others = [], []
    for line in stack.logs(service).splitlines():
        try:
            parsed = json.loads(line)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            objects.append(parsed)
        elif line.strip() and not line.startswith(NGINX_START_LINE):
            others.append(line)
    check(not others, f"{service} wrote lines that are not JSON objects:\n" + "\n".join(others[:10]))
    return objects


def one_request_id_in_json_logs(stack: ComposeStack) -> None:
    """nginx gives the request an id, returns it, and its line and the app server's carry it."""
    response = stack.get("/api/io?ms=1")
    request_id = response.headers.get("X-Request-ID", "")
    check(response.status == 200 and request_id, f"/api/io answered {response.status}, X-Request-ID {request_id!r}")
    deadline = time.monotonic() + 10
    while True:
        found = {
            service: [line for line in log_objects(stack, service) if line.get("request_id") == request_id]
            for service in ("nginx", "app")
        }
        if all(found.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    check(all(found.values()), f"request {request_id} is not in every log: {found}")
    say(f"request {request_id}: in nginx's and the app server's JSON lines")


def forwarded_headers_from_trusted_proxies_only(stack: ComposeStack) -> None:
    """X-Forwarded-* count only from TRUSTED_PROXIES: none in compose.yaml, so from the host they are
    a forgery that changes nothing. Trusting the address nginx sees the host at (Docker's or podman's
    port forwarding), as a load balancer in front of it would be trusted, they reach the app."""
    forged = stack.get("/api/request", FORWARDED)
    told = json.loads(forged.body)
    check(forged.status == 200, f"/api/request answered {forged.status}")
    believed = told["scheme"] == "https" or told["client"] == FORWARDED["X-Forwarded-For"]
    check(not believed, f"forged headers believed: {told}")
    check("Strict-Transport-Security" not in forged.headers, "HSTS sent on a plain http request")
    request_id = forged.headers.get("X-Request-ID")
    peers = [line["remote_addr"] for line in log_objects(stack, "nginx") if line.get("request_id") == request_id]
    check(peers, f"no nginx access line for request {request_id}")
    stack.env["TRUSTED_PROXIES"] = peers[0]
    stack.up("--no-deps", services=("nginx",))  # nginx alone is recreated, with the new setting
    trusted = stack.get("/api/request", FORWARDED)
    told = json.loads(trusted.body)
    check(told["scheme"] == "https" and told["url"].startswith("https://"), f"the app was not told https: {told}")
    check(told["client"] == FORWARDED["X-Forwarded-For"], f"the app was not told the client: {told}")
    check("max-age=" in trusted.headers.get("Strict-Transport-Security", ""), "no HSTS on an https request")
    if CHOSEN.framework == "django":
        # A form POST from an https:// page, with the token of the csrftoken cookie the GET set.
        token = trusted.headers.get("Set-Cookie", "").partition("csrftoken=")[2].partition(";")[0]
        cookie = {"Cookie": f"csrftoken={token}", "Origin": "https://localhost"}
        form = f"csrfmiddlewaretoken={token}".encode()
        posted = stack.get("/api/request", {**FORWARDED, **cookie}, data=form)
        check(posted.status == 200, f"Django refused a form POST from https://localhost: {posted.status}")
        forged_post = stack.get("/api/request", cookie, data=form)  # the same page over plain http: not its origin
        check(forged_post.status == 403, f"Django accepted an https:// Origin over http: {forged_post.status}")
    say(f"X-Forwarded-* ignored from the host, believed when nginx trusts {peers[0]}: ok")


def metrics_on_the_network_only(stack: ComposeStack) -> None:
    """The metrics answer on the app's network (asked from nginx's container), never through nginx."""
    plan_lines = [line for line in stack.logs("app").splitlines() if line.startswith("{") and '"workers"' in line]
    plan = json.loads(plan_lines[-1])
    scraped = stack.exec("nginx", "wget", "-q", "-O", "-", f"http://app:{DEFAULT_METRICS_PORT}/metrics")
    check(scraped.returncode == 0, f"app:{DEFAULT_METRICS_PORT}/metrics from nginx's container: {scraped.stderr}")
    planned = re.search(r"^app_plan_workers (\S+)$", scraped.stdout, re.MULTILINE)
    scraped_workers = float(planned.group(1)) if planned else None
    check(scraped_workers == plan["workers"], f"app_plan_workers {scraped_workers}, the plan {plan['workers']}")
    public = stack.get("/metrics")
    check(public.status == 404 and b"app_plan_workers" not in public.body, f"/metrics through nginx: {public.status}")
    published = stack.docker_run("port", stack.container("app")).stdout.strip()
    check(not published, f"the app publishes ports: {published}")
    say(f"metrics on app:{DEFAULT_METRICS_PORT} in the network (app_plan_workers {plan['workers']}), not through nginx")


def app_processes(stack: ComposeStack) -> dict[int, dict[str, Any]]:
    result = stack.exec("app", "python", "-c", PROCESSES)
    check(result.returncode == 0, f"listing the app's processes failed: {result.stderr}")
    return {int(pid): info for pid, info in json.loads(result.stdout).items()}


def is_worker(info: dict[str, Any], server: int) -> bool:
    """A live child of the server that serves requests, not one that runs beside the workers."""
    beside = any(name in info["command"] for name in BESIDE_THE_WORKERS)
    return info["ppid"] == server and info["state"] != "Z" and not beside


def plan_matches_the_container(stack: ComposeStack) -> None:
    plan_lines = [line for line in stack.logs("app").splitlines() if line.startswith("{") and '"workers"' in line]
    check(plan_lines, "no plan line in the app's log")
    plan = json.loads(plan_lines[-1])
    limits = stack.config()["services"]["app"]["deploy"]["resources"]["limits"]
    for resource in ("cpus", "memory"):
        source = plan["limits"][resource]["from"]
        check(source.startswith("cgroup"), f"the plan took {resource} from {source}, not the container's cgroup")
    check(plan["cpus"] == float(limits["cpus"]), f"plan {plan['cpus']} CPU, compose {limits['cpus']}")
    check(plan["memory_limit_bytes"] == int(limits["memory"]), f"plan {plan['memory_limit_bytes']}, compose {limits}")
    processes = app_processes(stack)
    # PID 1 is the engine's init; its child, the server (pyserve serve execs it); its children, the workers.
    servers = [pid for pid, info in processes.items() if info["ppid"] == 1]
    check(len(servers) == 1, f"expected one server under init: {servers}")
    workers = [pid for pid, info in processes.items() if is_worker(info, servers[0])]
    running = len(workers) or 1  # a server without worker processes serves in its own
    check(running == plan["workers"], f"{running} workers running, the plan says {plan['workers']}")
    say(
        f"plan: {plan['cpus']:g} CPU, {plan['memory_limit_bytes'] // 2**20} MiB from the cgroup;"
        f" {running} workers x {plan['threads']} threads running as planned"
    )
    nginx_limit = stack.config()["services"]["nginx"]["deploy"]["resources"]["limits"]["cpus"]
    expected = max(1, -(-int(float(nginx_limit) * 1000) // 1000))
    nginx_workers = stack.exec("nginx", "sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '").stdout
    count = nginx_workers.count("nginx: worker process")
    check(count == expected, f"{count} nginx workers for a limit of {nginx_limit} CPU")
    started = [line for line in stack.logs("nginx").splitlines() if line.startswith("nginx-start:")]
    say(f"nginx: {count} worker(s) for its {nginx_limit} CPU; {started[-1] if started else 'no start line'}")


def users_and_read_only(stack: ComposeStack) -> None:
    # The container's own processes: its init (pid 1) and what descends from it. A process the engine
    # enters from outside (`docker exec`: a healthcheck, this probe) has no parent inside, and runs
    # as root for a moment while the engine sets it up, before it takes the container's user.
    own = {pid: info for pid, info in app_processes(stack).items() if pid == 1 or info["ppid"] != 0}
    app_users = {info["uid"] for info in own.values()}
    check(app_users == {APP_USER}, f"app processes run as {app_users}, not {APP_USER}: {own}")
    nginx_users = set(stack.exec("nginx", "sh", "-c", OWN_USERS).stdout.split())
    check(nginx_users == {str(NGINX_USER)}, f"nginx processes run as {nginx_users}, not {NGINX_USER}")
    for service, outside, inside in (
        ("app", "/app/written", "/tmp/written"),
        ("nginx", "/etc/nginx/written", "/var/cache/nginx/written"),
    ):
        check(stack.exec(service, "sh", "-c", f": > {outside}").returncode != 0, f"{service} could write {outside}")
        check(stack.exec(service, "sh", "-c", f": > {inside}").returncode == 0, f"{service} could not write {inside}")
    # Without the read-only root too, the app's user cannot change its own code. The verdict is
    # printed, not the exit status: podman's Docker API reports 0 for a `run` whose command failed.
    attempt = (
        "try:\n open('/app/deploy/stack.toml', 'a')\n print('writable')\nexcept PermissionError:\n print('denied')"
    )
    result = stack.docker_run("run", "--rm", "--entrypoint", "python", stack.image("app"), "-c", attempt)
    check(result.stdout.strip() == "denied", f"the app could write its code: {result.stdout} {result.stderr}")
    say(f"app runs as {APP_USER}, nginx as {NGINX_USER}; only their tmpfs take writes; the app cannot change its code")


def images_are_lean(stack: ComposeStack) -> None:
    """The app image holds the runtime only: no compiler, no pip cache, no layer of the build stage."""
    image = stack.image("app")
    look = "import os, shutil; print([c for c in ('gcc', 'cc') if shutil.which(c)], os.path.exists('/root/.cache/pip'))"
    found = stack.docker_run("run", "--rm", "--user", "0", "--entrypoint", "python", image, "-c", look).stdout.strip()
    check(found == "[] False", f"the app image has a compiler or a pip cache: {found}")
    history = stack.docker_run("history", "--no-trunc", image).stdout
    check("pip install" not in history, "the app image carries the build stage's layers")
    app_mb, nginx_mb = (stack.inspect(stack.image(service))["Size"] / 1e6 for service in ("app", "nginx"))
    say(f"images: app {app_mb:.0f} MB, nginx {nginx_mb:.0f} MB; no compiler, pip cache or build-stage layer")


def sql(stack: ComposeStack, query: str) -> str:
    """One query by psql inside the database's container, as its owner over the local socket."""
    environment = stack.config()["services"]["db"]["environment"]
    user, database = environment["POSTGRES_USER"], environment["POSTGRES_DB"]
    result = stack.exec("db", "psql", "-U", user, "-d", database, "-v", "ON_ERROR_STOP=1", "-tA", "-c", query)
    check(result.returncode == 0, f"psql: {result.stderr}")
    return result.stdout.strip()


def moment(stamp: str) -> datetime:
    """An engine's RFC 3339 time (nanoseconds, Z) as a datetime."""
    return datetime.fromisoformat(re.sub(r"(\.\d{6})\d*", r"\1", stamp).replace("Z", "+00:00"))


def release_step_ran_first(stack: ComposeStack, expected: str) -> None:
    """The migrate service ran to its end (exit 0) before the app's container started, and said in one
    line what it did."""
    [step] = stack.run("ps", "--all", "--quiet", "migrate").stdout.split()
    state = stack.inspect(step)["State"]
    check(state["Status"] == "exited" and state["ExitCode"] == 0, f"the release step {state['Status']}: {state}")
    app_started = stack.inspect(stack.container("app"))["State"]["StartedAt"]
    check(moment(state["FinishedAt"]) <= moment(app_started), "the app started before the release step ended")
    lines = [json.loads(line)["message"] for line in stack.logs("migrate").splitlines() if '"pyserve.migrate"' in line]
    check(lines and expected in lines[-1], f"the release step said {lines}, not {expected!r}")
    say(f"release step: {lines[-1]}, before the app started: ok")


def probe_database(stack: ComposeStack) -> None:
    """The app's database through nginx, within the plan's connections."""
    ready = stack.get("/readyz")
    check(ready.status == 200, f"/readyz answered {ready.status}: {ready.body[:200]!r}")
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda _: stack.get("/api/db?ms=50"), range(64)))
    check(all(answer.status == 200 for answer in answers), f"{[answer.status for answer in answers]}")
    visits = sorted(json.loads(answer.body)["visit"] for answer in answers)
    check(visits == list(range(1, 65)), f"64 queries recorded the visits {visits}")
    plan = json.loads([line for line in stack.logs("app").splitlines() if '"db_pool_size"' in line][-1])
    planned = plan["workers"] * plan["db_pool_size"]
    held = int(sql(stack, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'")) - 1
    check(held <= planned, f"the app holds {held} connections, the plan {planned}")
    say(f"database: /readyz, 64 queries through {plan['workers']} pools of {plan['db_pool_size']}; {held} held: ok")


def data_survives_down_and_up(stack: ComposeStack) -> None:
    """A row written, `down` without --volumes, `up` again: the volume kept it."""
    sql(stack, "CREATE TABLE IF NOT EXISTS container_test (written text); INSERT INTO container_test VALUES ('kept')")
    stack.run("down", timeout=120)
    stack.up()
    check(sql(stack, "SELECT written FROM container_test") == "kept", "the row written before `down` is gone")
    sql(stack, "DROP TABLE container_test")
    say("database: a row written before `down` and `up` is still there")


def load_test_passes(stack: ComposeStack) -> None:
    """The project's own `make loadtest` against the stack in its containers, thresholds and all."""
    run_time = container_test_settings(os.environ).locust_run_time
    env = {**os.environ, "LOCUST_RUN_TIME": run_time}
    # By name: nginx answers only the hosts in SERVER_NAMES (compose: localhost), as in production.
    command = ["make", "loadtest", f"HOST=http://localhost:{stack.port}"]
    result = subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=600)
    summary = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("loadtest:")]
    check(result.returncode == 0, f"make loadtest failed: {summary or result.stderr[-2000:]}")
    say(f"make loadtest for {run_time}: {summary[-1] if summary else 'passed'}")


def websockets_and_events_pass_nginx(stack: ComposeStack) -> None:
    echoed = websocket_echo(stack.port, "hello")
    check(echoed == "hello", f"/ws/echo sent back {echoed!r}")
    connection = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=30)
    started = time.monotonic()
    try:
        connection.request("GET", "/api/events?n=3", headers={"Host": "localhost"})
        response = connection.getresponse()
        check(response.status == 200, f"/api/events answered {response.status}")
        first = response.readline()  # the first event's first line, as soon as nginx passes it on
        first_s = time.monotonic() - started
        check(first == b"id: 0\n", f"the stream began with {first!r}")
        check(first_s < FIRST_EVENT_S, f"the first event took {first_s:.2f} s: something buffers the stream")
        rest = response.read()
        check(rest.count(b"\nid: ") == 2, f"the stream ended after {rest!r}")
    finally:
        connection.close()
    say(f"WebSocket echo through nginx; the first server-sent event after {first_s:.2f} s")


def stop_lets_a_request_finish(stack: ComposeStack) -> None:
    responses: list[Response | Exception] = []

    def in_flight() -> None:
        try:
            responses.append(stack.get(f"/api/io?ms={IN_FLIGHT_MS}", timeout=60))
        except Exception as error:  # any failure is the check's to report
            responses.append(error)

    request = threading.Thread(target=in_flight)
    request.start()
    time.sleep(0.5)
    started = time.monotonic()
    stack.run("stop", timeout=120)
    request.join(timeout=60)
    finished = responses[0] if responses else None
    if not isinstance(finished, Response):
        raise CheckFailed(f"the in-flight request failed: {responses}")
    check(finished.status == 200, f"the in-flight request got {finished.status}")
    stopped = time.monotonic() - started
    say(f"stop during a {IN_FLIGHT_MS / 1000:g} s request: it finished (200); stopped in {stopped:.1f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    given = container_test_settings(os.environ)
    parser.add_argument("--compose", default=given.compose, help="Compose v2 command")
    parser.add_argument("--docker", default=given.docker, help="the engine's CLI")
    parser.add_argument("--keep-images", action="store_true", help="keep the built images (the build cache stays)")
    parser.add_argument("--loadtest", action="store_true", help="also run `make loadtest` against the stack")
    args = parser.parse_args(argv)
    slug = STACK["template"]["project_slug"].replace("_", "-")
    env = {}
    if CHOSEN.framework == "django":
        # compose.yaml refuses to start Django without one; a throwaway key for this run, written nowhere.
        env["DJANGO_SECRET_KEY"] = given.django_secret_key or secrets.token_urlsafe(50)
    if CHOSEN.database != "none":
        # compose.yaml refuses to start the database without one; a throwaway password, written nowhere.
        env["POSTGRES_PASSWORD"] = given.postgres_password or secrets.token_urlsafe(24)
    # The app server's own access line, beside nginx's: both must carry each request's id.
    env["ACCESS_LOG"] = "1"
    name = f"{slug}-test-{os.getpid()}"
    stack = ComposeStack(shlex.split(args.compose), shlex.split(args.docker), name, free_port(), env)
    started = time.monotonic()
    try:
        stack.run("build", timeout=1800)
        say(f"images built in {time.monotonic() - started:.0f} s")
        stack.up()
        say(f"up and healthy on 127.0.0.1:{stack.port} after {time.monotonic() - started:.0f} s")
        probe_health(stack)
        probe_app(stack)
        if CHOSEN.database != "none":
            release_step_ran_first(stack, "applied 1 migration")
            probe_database(stack)
            data_survives_down_and_up(stack)
            release_step_ran_first(stack, "the schema is current")
        slow_requests_do_not_hold_up_fast_ones(stack)
        one_request_id_in_json_logs(stack)
        forwarded_headers_from_trusted_proxies_only(stack)
        metrics_on_the_network_only(stack)
        if CHOSEN.interface == "asgi":
            websockets_and_events_pass_nginx(stack)
        plan_matches_the_container(stack)
        users_and_read_only(stack)
        images_are_lean(stack)
        if args.loadtest:
            load_test_passes(stack)
        stop_lets_a_request_finish(stack)
    except (CheckFailed, subprocess.TimeoutExpired) as failure:
        print(f"container-test: FAILED: {failure}", file=sys.stderr)
        for service in (*SERVICES, *RELEASE_STEP):
            print(f"--- {service} log (last lines) ---\n" + stack.logs(service)[-3000:], file=sys.stderr)
        return 1
    finally:
        stack.down(remove_images=not args.keep_images)
    left = stack.leftovers()
    if left:
        print(f"container-test: FAILED: `down` left {left}", file=sys.stderr)
        return 1
    say(f"passed in {time.monotonic() - started:.0f} s; down left no container, network or volume")
    return 0


if __name__ == "__main__":
    sys.exit(main())
