"""What a running stack tells its operators, for every server: one request id from nginx to the app's
own log lines, JSON logs that parse under load, and metrics that show the plan and count the requests.

Each stack runs once (`make local` with LOG_FORMAT=json, the app server's access line on and the app's
debug lines shown) for all the checks on it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from pyserve_template.baking import free_port, project_venv

from .conftest import SERVER_VARIATIONS
from .load import SteadyLoad
from .stack import Stack, metric_samples, running_stack, wait_for

pytestmark = pytest.mark.e2e

# Every server; the WSGI servers that are not gunicorn on WSGI too (a2wsgi's and granian's own
# thread pools run the app there); and the frameworks that would configure logging themselves.
STACKS = {
    **SERVER_VARIATIONS,
    "granian-wsgi": {"framework": "flask", "server": "granian", "cpu_limit": "2"},
    "hypercorn-wsgi": {"framework": "django", "interface": "wsgi", "server": "hypercorn", "cpu_limit": "2"},
    "django": {"framework": "django", "cpu_limit": "2"},
    "litestar": {"framework": "litestar", "cpu_limit": "2"},
}
# A load balancer in front of nginx (its TRUSTED_PROXIES), the client it names, and what a client forges.
TRUSTED_PROXY, CLIENT, FORGED = "127.0.0.2", "203.0.113.7", "198.51.100.9"
NGINX_MADE_ID = re.compile(r"^[0-9a-f]{32}$")
# A request whose app code writes a line of its own (the sample's site.burn_cpu, at debug level).
LOGGING_PATH = "/api/cpu?ms=1"
LOAD_PATH = "/api/io?ms=10"
LOAD_SECONDS = 2
# What `make local` itself prints around the stack's own lines: its recipe and its progress.
MAKE_LOCAL_OWN_LINE = re.compile(r"^(local: |collect_static: |\S*pyserve local)")


@dataclass
class ObservedStack:
    stack: Stack
    metrics_port: int

    def log_lines(self) -> list[dict]:
        """The stack's log lines that are JSON objects (every one but make local's own)."""
        return [json.loads(line) for line in self.stack.written_lines() if line.startswith("{")]

    def lines_for(self, request_id: str) -> list[dict]:
        return [line for line in self.log_lines() if line.get("request_id") == request_id]

    def metrics(self) -> dict[str, float]:
        return metric_samples(self.metrics_port)


@pytest.fixture(scope="module", params=list(STACKS))
def observed(request: pytest.FixtureRequest, bake_to_run) -> Iterator[ObservedStack]:
    project = bake_to_run(**STACKS[request.param])
    metrics_port = free_port()
    env = {"LOG_FORMAT": "json", "ACCESS_LOG": "1", "LOG_LEVEL": "debug", "METRICS_PORT": str(metrics_port)}
    env["TRUSTED_PROXIES"] = TRUSTED_PROXY
    with running_stack(project, project_venv(project), env) as stack:
        yield ObservedStack(stack, metrics_port)


def test_a_request_without_an_id_gets_one_and_nginx_the_server_and_the_app_log_it(observed: ObservedStack) -> None:
    response = observed.stack.get(LOGGING_PATH)
    assert response.status == 200
    request_id = response.headers["X-Request-ID"]
    assert NGINX_MADE_ID.match(request_id), request_id

    def all_three_logged() -> bool:
        loggers = {line["logger"] for line in observed.lines_for(request_id)}
        return {"nginx.access", "app.access"} <= loggers and any(name.endswith(".site") for name in loggers)

    wait_for(all_three_logged, 10, f"nginx's, the server's and the app's lines for {request_id}")
    lines = {line["logger"]: line for line in observed.lines_for(request_id)}
    assert (lines["nginx.access"]["status"], lines["app.access"]["status"]) == (200, 200)
    assert lines["app.access"]["pid"] in observed.stack.worker_pids()
    # Both durations hold the 1 ms the app spins (LOGGING_PATH), each in its own unit. Neither bounds
    # the other: the app's line is written once its last send() has returned, which on a busy
    # machine can be after nginx has had the last byte and written its own.
    assert lines["app.access"]["duration_ms"] >= 1 and lines["nginx.access"]["duration_s"] >= 0.001


@pytest.mark.parametrize(
    ("source", "client"), [(TRUSTED_PROXY, CLIENT), ("127.0.0.1", "127.0.0.1")], ids=["trusted-proxy", "anyone-else"]
)
def test_nginx_and_the_server_log_the_client_a_trusted_proxy_names_and_no_one_elses(
    observed: ObservedStack, source: str, client: str
) -> None:
    response = observed.stack.get("/healthz", headers={"X-Forwarded-For": f"{FORGED}, {CLIENT}"}, source=source)
    request_id = response.headers["X-Request-ID"]
    wait_for(lambda: len(observed.lines_for(request_id)) >= 2, 10, f"nginx's and the server's lines for {request_id}")
    lines = {line["logger"]: line for line in observed.lines_for(request_id)}
    assert (lines["nginx.access"]["remote_addr"], lines["app.access"]["client"]) == (client, client)


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("client-0123.abc:XYZ_9", True),
        ("a" * 128, True),
        ("has a space", False),
        ("short", False),
        ("a" * 129, False),
        ('"quoted"-0123', False),
    ],
    ids=["well-formed", "longest", "space", "too-short", "too-long", "quotes"],
)
def test_a_clients_id_is_kept_when_well_formed_and_replaced_otherwise(
    observed: ObservedStack, sent: str, kept: bool
) -> None:
    response = observed.stack.get("/healthz", headers={"X-Request-ID": sent})
    returned = response.headers["X-Request-ID"]
    assert returned == sent if kept else NGINX_MADE_ID.match(returned), returned
    wait_for(lambda: len(observed.lines_for(returned)) >= 2, 10, f"nginx's and the server's lines for {returned}")
    assert {line["logger"] for line in observed.lines_for(returned)} >= {"nginx.access", "app.access"}


def test_the_metrics_show_the_plan_and_count_every_request_of_a_short_load(observed: ObservedStack) -> None:
    plan = observed.stack.plan()
    before = observed.metrics()
    assert (before["app_plan_workers"], before["app_plan_threads"]) == (plan["workers"], plan["threads"])
    assert before["app_plan_cpus"] == plan["cpus"]
    assert before["app_workers_alive"] == plan["workers"]
    load = SteadyLoad(observed.stack.http_port, LOAD_PATH, users=8)
    with load.running():
        wait_for(lambda: load.count() >= 50, 30, "50 requests answered")
    assert not load.failures()
    answered = load.count()

    def grew(name: str) -> float:
        return observed.metrics().get(name, 0) - before.get(name, 0)

    # A worker records a request once the server has sent its response, which can be a moment after
    # the client read it: the count reaches the load's within seconds and never passes it.
    counted = 'app_request_duration_seconds_count{status="200"}'
    wait_for(lambda: grew(counted) >= answered, 5, f"{answered} requests counted")
    assert grew(counted) == answered
    # Every one came through nginx, which dated it: each has a time in the queue.
    assert grew("app_request_queue_seconds_count") == answered

    def in_flight() -> list[float]:
        return [value for name, value in observed.metrics().items() if name.startswith("app_requests_in_flight{")]

    # One gauge a worker, back to zero.
    assert len(in_flight()) == plan["workers"]
    wait_for(lambda: sum(in_flight()) == 0, 5, "every worker with no request in flight")


def test_the_metrics_are_not_served_through_nginx(observed: ObservedStack) -> None:
    response = observed.stack.get("/metrics")
    assert response.status == 404
    assert b"app_request_duration_seconds" not in response.body


def test_every_line_the_stack_writes_is_a_json_object_even_under_load(observed: ObservedStack) -> None:
    load = SteadyLoad(observed.stack.http_port, LOGGING_PATH, users=16)
    with load.running():
        wait_for(lambda: load.count() >= 200, 60, "200 requests answered")
    assert not load.failures()
    lines = observed.stack.written_lines()
    unparsed = []
    for line in lines:
        if MAKE_LOCAL_OWN_LINE.match(line):
            continue
        try:
            parsed = json.loads(line)
        except ValueError:
            unparsed.append(line)
            continue
        if not isinstance(parsed, dict):
            unparsed.append(line)
    assert not unparsed, "\n".join(unparsed[:20])
    assert len(lines) > 3 * 200  # nginx's, the server's and the app's line for each request
