"""End to end: every supported stack and each static strategy is baked, installed, started with
`make local` and used through the real nginx, as a browser and as the generated load test use it."""

from __future__ import annotations

import csv
import http.client
import json
import os
import re
import secrets
import subprocess
import threading
import time
import tomllib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pyserve_template.baking import TOOLS, free_port, project_venv
from pyserve_template.matrix import PRODUCT, STATIC_VARIATIONS

from .conftest import context, variation_id
from .stack import Response, Stack, command_line, resident_memory, running_stack, wait_for

pytestmark = pytest.mark.e2e

CDN_URL = "https://cdn.example.test/static/"
ASSET = re.compile(r'(?:href|src)="([^"]+\.(?:css|js|svg|png|jpe?g|gif|webp|ico|woff2?))"')
HASHED = re.compile(r"\.[0-9a-f]{12}\.\w+$")
ONE_YEAR = 365 * 24 * 3600

LOAD_USERS = 32
LOAD = {"LOCUST_USERS": str(LOAD_USERS), "LOCUST_SPAWN_RATE": "32", "LOCUST_RUN_TIME": "5s", "LOCUST_THINK_TIME": "0"}

# The article's scenario: 3 slow requests and 15 fast ones, fired at once.
SLOW_MS = 1000
SLOW_REQUESTS, FAST_REQUESTS = 3, 15


# A load balancer that ends TLS in front of nginx (its TRUSTED_PROXIES), and what it says of a client.
TRUSTED_PROXY = "127.0.0.2"
PUBLIC_HOST = "public.example.test"
FORWARDED = {
    "X-Forwarded-Proto": "https",
    "X-Forwarded-For": "198.51.100.9, 203.0.113.7",
    "X-Forwarded-Host": PUBLIC_HOST,
}
CLIENT = "203.0.113.7"
# Each client's limit on the app's paths (deploy/nginx/templates/limits.conf.template), a client
# asking far faster, and one asking at a person's pace beside it.
RATE_PER_S, BURST = 20, 40
GREEDY_REQUESTS, GREEDY_THREADS, OTHER_CLIENT, OTHER_REQUESTS = 120, 16, "198.51.100.9", 10


@pytest.mark.parametrize("changes", [*PRODUCT, *STATIC_VARIATIONS], ids=variation_id)
def test_stack_serves_through_nginx(fresh_bake, changes: dict[str, str]) -> None:
    project = fresh_bake(**changes)
    static = context(**changes)["static_strategy"]
    env = {"STATIC_URL": CDN_URL} if static == "cdn" else {}
    env.update(TRUSTED_PROXIES=TRUSTED_PROXY, ALLOWED_HOSTS=f"localhost,{PUBLIC_HOST}")
    venv = project_venv(project)
    if context(**changes)["framework"] == "django":
        check_django_deployment_checklist(project, venv)
    with running_stack(project, venv, env) as stack:
        check_page_and_assets(stack, static)
        check_endpoints(stack)
        check_forwarded_headers_count_from_trusted_proxies_only(stack)
        check_container_healthcheck(stack, venv)
        check_nginx_guards(stack)
        check_one_client_over_its_limit_leaves_the_others_served(stack, static)
        check_slow_requests_do_not_hold_up_fast_ones(stack)
        check_load_test_passes(stack, static)
        check_workers_fit_the_memory_model(stack)


def max_age(response: Response) -> int:
    match = re.search(r"max-age=(\d+)", response.headers.get("Cache-Control", ""))
    return int(match.group(1)) if match else 0


def check_page_and_assets(stack: Stack, static: str) -> None:
    page = stack.get("/")
    assert page.status == 200 and page.headers.get_content_type() == "text/html"
    # Security headers are set once, whoever else sets them.
    assert page.headers.get_all("X-Content-Type-Options") == ["nosniff"]
    assert len(page.headers.get_all("X-Frame-Options") or []) == 1
    assets = ASSET.findall(page.text)
    if static == "none":
        assert assets == [] and stack.get("/static/css/site.css").status == 404
        return
    assert {Path(url).suffix for url in assets} == {".css", ".js", ".svg"}, assets
    for url in assets:
        base = CDN_URL if static == "cdn" else "/static/"
        assert url.startswith(base), f"{url} is not under {base}"
        path = "/static/" + url.removeprefix(base)  # the CDN's origin is nginx's /static/
        assert HASHED.search(path), f"{path}: not a content-hashed name, so it cannot be cached for long"
        asset = stack.get(path, headers={"Accept-Encoding": "gzip"})
        assert asset.status == 200, f"{path}: {asset.status}"
        assert max_age(asset) >= ONE_YEAR, f"{path}: Cache-Control {asset.headers.get('Cache-Control')}"
        if path.endswith(".js"):
            assert asset.headers.get("Content-Encoding") == "gzip", f"{path} not compressed"


def check_endpoints(stack: Stack) -> None:
    assert stack.get("/healthz").status == 200
    io = stack.get("/api/io?ms=50")
    assert io.status == 200 and '"waited_ms"' in io.text and io.seconds >= 0.05
    cpu = stack.get("/api/cpu?ms=20")
    assert cpu.status == 200 and '"cpu_ms"' in cpu.text
    assert stack.get("/api/io?ms=999999").status in {400, 422}  # refused, not a 10-minute wait


def check_django_deployment_checklist(project: Path, venv: Path) -> None:
    """`manage.py check --deploy` passes: every warning fails it, and the two silenced say why in settings.py."""
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SECRET_KEY": secrets.token_urlsafe(50)}
    command = [str(venv / "bin" / "python"), "manage.py", "check", "--deploy", "--fail-level", "WARNING"]
    result = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues (2 silenced)" in result.stdout, result.stdout


def told(response: Response) -> dict[str, str]:
    """What the app says it was told about a request (/api/request)."""
    assert response.status == 200, f"/api/request answered {response.status}: {response.text[:300]}"
    return json.loads(response.body)


def logged(stack: Stack, text: str) -> None:
    """`text` is in the stack's log within a few seconds (nginx writes its access line after the response)."""
    wait_for(lambda: text in stack.output(), 5, f"{text!r} in the log")


def check_forwarded_headers_count_from_trusted_proxies_only(stack: Stack) -> None:
    """From the trusted proxy the app is told the client's scheme, host and address, and nginx logs
    the client; from anyone else the same headers change nothing. Django's CSRF check follows."""
    trusted = stack.get("/api/request", headers=FORWARDED, source=TRUSTED_PROXY)
    assert told(trusted) == {
        "scheme": "https",
        "host": PUBLIC_HOST,
        "client": CLIENT,
        "url": f"https://{PUBLIC_HOST}/api/request",
    }
    assert trusted.headers["Strict-Transport-Security"].startswith("max-age=")
    logged(stack, f"{CLIENT} [{trusted.headers['X-Request-ID']}]")  # nginx's access line
    forged = stack.get("/api/request", headers=FORWARDED)
    assert told(forged) == {
        "scheme": "http",
        "host": "localhost",
        "client": "127.0.0.1",
        "url": "http://localhost/api/request",
    }
    assert "Strict-Transport-Security" not in forged.headers
    logged(stack, f"127.0.0.1 [{forged.headers['X-Request-ID']}]")
    if stack.plan()["framework"] == "django":
        check_csrf_accepts_an_https_origin_from_the_trusted_proxy_only(stack)


def check_csrf_accepts_an_https_origin_from_the_trusted_proxy_only(stack: Stack) -> None:
    """A form POST from an https:// page, with the token of the csrftoken cookie a GET set."""
    cookie = stack.get("/api/request").headers["Set-Cookie"]
    token = cookie.partition("csrftoken=")[2].partition(";")[0]
    assert len(token) == 32 and "Secure" in cookie, cookie
    form = {
        "Cookie": f"csrftoken={token}",
        "Origin": f"https://{PUBLIC_HOST}",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    body = f"csrfmiddlewaretoken={token}".encode()
    trusted = stack.request("POST", "/api/request", body, headers={**FORWARDED, **form}, source=TRUSTED_PROXY)
    assert told(trusted)["scheme"] == "https"  # request.is_secure()
    forged = stack.request("POST", "/api/request", body, headers={**FORWARDED, **form})
    assert forged.status == 403 and b"CSRF verification failed" in forged.body, forged.status


def check_container_healthcheck(stack: Stack, venv: Path) -> None:
    """The Dockerfile's HEALTHCHECK command, run against the app server as the container runs it."""
    command = [str(venv / "bin" / "pyserve"), "healthcheck"]
    env = {"PATH": "/usr/bin:/bin", "BIND": f"127.0.0.1:{stack.app_port}"}
    assert subprocess.run(command, cwd=stack.project, env=env, timeout=10, check=False).returncode == 0
    env["BIND"] = f"127.0.0.1:{free_port()}"  # and it fails where nothing answers
    assert subprocess.run(command, cwd=stack.project, env=env, timeout=10, capture_output=True).returncode != 0


def check_nginx_guards(stack: Stack) -> None:
    assert stack.get("/.env").status == 404
    assert stack.get("/static/.gitignore").status == 404
    traversal = stack.get("/static/../deploy/stack.toml")
    assert traversal.status in {400, 404} and b"def main" not in traversal.body
    # A Host nginx does not serve gets no answer at all (444), and never reaches the app.
    with pytest.raises(http.client.RemoteDisconnected):
        stack.get("/", host="unknown.example")


def as_client(stack: Stack, client: str, path: str) -> Response:
    """A request from `client`, as the trusted load balancer in front of nginx names it."""
    return stack.get(path, headers={"X-Forwarded-For": client}, source=TRUSTED_PROXY)


def check_one_client_over_its_limit_leaves_the_others_served(stack: Stack, static: str) -> None:
    """A client asking as fast as it can gets its burst and its rate, then 429 with Retry-After, while
    another client is served as usual; static files, health checks and private addresses are not
    counted."""
    path = "/api/io?ms=1"
    with ThreadPoolExecutor(GREEDY_THREADS + 1) as pool:
        other = pool.submit(lambda: [as_client(stack, OTHER_CLIENT, path).status for _ in range(OTHER_REQUESTS)])
        started = time.monotonic()
        greedy = list(pool.map(lambda _: as_client(stack, CLIENT, path), range(GREEDY_REQUESTS)))
        elapsed = time.monotonic() - started
        assert other.result() == [200] * OTHER_REQUESTS
    statuses = Counter(response.status for response in greedy)
    assert set(statuses) == {200, 429} and statuses[200] <= BURST + RATE_PER_S * elapsed + 1, (statuses, elapsed)
    assert {response.headers.get("Retry-After") for response in greedy if response.status == 429} == {"1"}
    assert as_client(stack, CLIENT, "/healthz").status == 200
    if static != "none":
        asset = ASSET.findall(stack.get("/").text)[0]
        assert as_client(stack, CLIENT, "/static/" + asset.rsplit("/static/", 1)[-1]).status == 200
    from_loopback = [stack.get(path).status for _ in range(BURST + 10)]
    assert from_loopback == [200] * len(from_loopback)


def fire_at_once(stack: Stack, paths: list[str]) -> list[Response]:
    barrier = threading.Barrier(len(paths))

    def fire(path: str) -> Response:
        barrier.wait()
        return stack.get(path)

    with ThreadPoolExecutor(len(paths)) as pool:
        return list(pool.map(fire, paths))


def check_slow_requests_do_not_hold_up_fast_ones(stack: Stack) -> None:
    slow, fast = [f"/api/io?ms={SLOW_MS}"] * SLOW_REQUESTS, ["/healthz"] * FAST_REQUESTS
    started = time.monotonic()
    responses = fire_at_once(stack, slow + fast)
    elapsed = time.monotonic() - started
    assert [response.status for response in responses] == [200] * len(responses)
    # One after another the slow ones alone would take 3 s; together, about one slow request.
    assert elapsed < SLOW_MS / 1000 * 1.6, f"18 requests took {elapsed:.2f} s"
    slowest_fast = max(response.seconds for response in responses[SLOW_REQUESTS:])
    assert slowest_fast < 0.5, f"a fast request waited {slowest_fast:.2f} s behind the slow ones"


def check_load_test_passes(stack: Stack, static: str) -> None:
    """`make loadtest`, shortened through Locust's environment variables (they beat locust.conf), and
    without think time: 32 users asking back to back keep every worker (and its threads) busy."""
    env = {**os.environ, **LOAD}
    command = ["make", "loadtest", f"LOCUST={TOOLS / 'locust'}", f"HOST=http://127.0.0.1:{stack.http_port}"]
    result = subprocess.run(
        command, cwd=stack.project, env=env, capture_output=True, text=True, timeout=90, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "loadtest: passed" in output
    reports = stack.project / "loadtest" / "reports"
    with (reports / "run_stats.csv").open() as handle:
        requests = {row["Name"]: int(row["Request Count"]) for row in csv.DictReader(handle)}
    assert requests.get("/", 0) >= LOAD_USERS, requests  # every user opens the page first
    if static in {"nginx", "whitenoise"}:
        assert requests.get("static asset (first visit)", 0) >= 3 * LOAD_USERS, requests
    assert (reports / "report.html").stat().st_size > 0


def check_workers_fit_the_memory_model(stack: Stack) -> None:
    """After the load: no worker is bigger than the model's per-worker figure, and what runs beside
    the workers (the master, a resource tracker, the metrics endpoint) no bigger than the project's
    figure for them (deploy/stack.toml's [memory] server; open connections are the workers')."""
    plan = stack.plan()
    workers = stack.worker_pids()
    assert len(workers) == plan["workers"], (workers, plan["workers"])
    worker_rss = [resident_memory(pid) for pid in workers]
    helpers = stack.helper_pids()
    assert any("pyserve_runtime.metrics_server" in command_line(pid) for pid in helpers), (
        "no metrics endpoint to measure"
    )
    helpers_rss = sum(resident_memory(pid) for pid in helpers)
    mib = 1024 * 1024
    server_figure = tomllib.loads((stack.project / "deploy" / "stack.toml").read_text())["memory"]["server"] * mib
    print(
        f"memory {plan['framework']}/{plan['interface']}/{plan['server']}: workers"
        f" {', '.join(f'{rss / mib:.1f}' for rss in worker_rss)} MiB (model {plan['worker_memory_bytes'] / mib:.0f}),"
        f" server {helpers_rss / mib:.1f} MiB (model {server_figure / mib:.0f})"
    )
    assert max(worker_rss) <= plan["worker_memory_bytes"], "a worker outgrew the model's figure: raise it"
    assert helpers_rss <= server_figure, "the server's own processes outgrew the model's figure: raise it"


def test_load_test_fails_when_the_service_does(fresh_bake) -> None:
    """The thresholds bite: against a port where nothing answers, `make loadtest` exits non-zero."""
    project = fresh_bake()
    # Long enough for Locust to start and ask at least once on a busy machine.
    env = {**os.environ, "LOCUST_USERS": "2", "LOCUST_SPAWN_RATE": "2", "LOCUST_RUN_TIME": "5s"}
    command = ["make", "loadtest", f"LOCUST={TOOLS / 'locust'}", f"HOST=http://127.0.0.1:{free_port()}"]
    result = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "loadtest: FAILED: failure ratio 100.00%" in result.stdout + result.stderr
