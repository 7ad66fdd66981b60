"""Faults inflicted on a running generated stack (`make local`: the app server behind a real nginx),
for each of the four servers: a killed worker, SIGTERM mid-request, a reload under load, a hung
request, slow clients, a huge body, and probes for files outside the static root.

What each server does is stated by the template itself (pyserve_template.compat.fault_behaviour:
written in the generated README, the caveats also printed at generation), and these tests hold each
server to exactly that.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pyserve_template import compat, settings
from pyserve_template.baking import project_venv

from .conftest import SERVER_VARIATIONS
from .load import STEADY_PATH, STEADY_USERS, SteadyLoad, raw_get, send_large_body, slow_clients, trickle
from .stack import Response, Stack, running_stack, wait_for

pytestmark = pytest.mark.e2e

# A hung request: nginx and the server give up after HANG_TIMEOUT_S; the request would take longer.
HANG_TIMEOUT_S = 2
HANG_PATH = "/api/io?ms=8000"
# uvicorn's supervisor reloads its workers one after another, each once its replacement serves: a
# fresh interpreter's start each, 4-5 s here when the suite's three lanes share 2 CPUs, and past 10 s
# on a busier run. A new worker may take WORKER_START_S; past it uvicorn abandons the reload and
# keeps the old workers, which this test sees.
RELOAD_S_PER_WORKER = settings.WORKER_START_S


def in_background(call: Callable[[], Response]) -> tuple[threading.Thread, list[Response]]:
    results: list[Response] = []
    thread = threading.Thread(target=lambda: results.append(call()), daemon=True)
    thread.start()
    return thread, results


@pytest.fixture(params=list(SERVER_VARIATIONS))
def server(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def project(bake_to_run, server: str) -> tuple[Path, Path]:
    baked = bake_to_run(**SERVER_VARIATIONS[server])
    return baked, project_venv(baked)


def caveat(server: str, fault: str) -> str | None:
    """What the template says this server does instead of surviving `fault`, if anything."""
    return compat.FAULT_CAVEATS.get(server, {}).get(fault)


def full_strength(stack: Stack) -> bool:
    return len(stack.worker_pids()) == stack.plan()["workers"]


def test_a_killed_worker_is_replaced_and_only_its_requests_in_flight_fail(
    project: tuple[Path, Path], server: str
) -> None:
    exits = caveat(server, "killed_worker") is not None
    with running_stack(*project, server_exits=exits) as stack:
        workers = stack.worker_pids()
        victim = workers[0]
        with SteadyLoad(stack.http_port, STEADY_PATH, STEADY_USERS).running() as load:
            time.sleep(1.5)
            killed_at = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            if exits:
                # The plain statement holds: the whole server stops, and `make local` says so.
                assert stack.make is not None
                wait_for(lambda: stack.make.poll() is not None, 30, f"{server} exits after a worker is killed")
                return
            wait_for(lambda: victim not in stack.worker_pids() and full_strength(stack), 20, "a new worker")
            time.sleep(2)
        failed = load.failures()
        served_after = [outcome for outcome in load.outcomes if outcome.started > killed_at]
        assert len(served_after) > 100, f"too little load after the kill to tell: {len(served_after)}"
        # Only what the killed worker held can fail: requests sent before the kill, at most one per user.
        assert all(outcome.started <= killed_at for outcome in failed), (failed, stack.proxy_errors())
        assert len(failed) <= STEADY_USERS, (failed, stack.proxy_errors())
        assert stack.get("/healthz").status == 200


def test_sigterm_lets_the_request_in_flight_finish_then_the_stack_exits(
    project: tuple[Path, Path], server: str
) -> None:
    with running_stack(*project) as stack:
        request, answered = in_background(lambda: stack.get("/api/io?ms=3000"))
        time.sleep(1)
        stopped_at = time.monotonic()
        stack.stop()
        request.join(timeout=30)
        assert stack.make is not None
        stack.make.wait(timeout=30)
        [response] = answered
        if caveat(server, "sigterm"):
            assert response.status == 502, "the caveat no longer holds: update compat.FAULT_CAVEATS"
            return
        assert response.status == 200, stack.output()[-3000:]
        assert b'"waited_ms":3000' in response.body.replace(b" ", b"")
        # The server waited for the request rather than for its graceful timeout (20 s).
        assert time.monotonic() - stopped_at < 10


def test_a_reload_under_load_fails_no_request(project: tuple[Path, Path], server: str) -> None:
    with running_stack(*project) as stack:
        before = set(stack.worker_pids())
        with SteadyLoad(stack.http_port, STEADY_PATH, STEADY_USERS).running() as load:
            time.sleep(1.5)
            os.kill(stack.server_pid, signal.SIGHUP)
            reloaded_at = time.monotonic()
            replaced_at = wait_for(
                lambda: not before & set(stack.worker_pids()) and full_strength(stack),
                RELOAD_S_PER_WORKER * len(before),
                "every worker replaced",
                seen=lambda: "\n".join(line for line in stack.output().splitlines() if '"GET ' not in line)[-3000:],
            )
            # A new worker's pid comes before it serves (gunicorn stops the old ones without waiting
            # for the new to load the app): requests queue meanwhile, so wait for one sent after.
            wait_for(
                lambda: load.count(since=replaced_at) > 0,
                RELOAD_S_PER_WORKER * len(before),
                "a request sent after answered",
            )
            slowest = max(outcome.ended - outcome.started for outcome in load.outcomes)
            print(f"{server}: workers replaced in {replaced_at - reloaded_at:.1f} s, slowest request {slowest:.1f} s")
        in_flight = [o for o in load.outcomes if o.started < replaced_at and o.ended > reloaded_at]
        assert in_flight, "no request was in flight while the workers were replaced"
        if caveat(server, "reload"):
            # All workers stop at once: the requests they held may fail (cancelled: 500), at most one
            # per user.
            assert len(load.failures()) <= STEADY_USERS, stack.proxy_errors()
            return
        assert load.failures() == [], stack.proxy_errors()


def test_a_hung_request_gets_504_and_the_stack_recovers(project: tuple[Path, Path], server: str) -> None:
    env = {"REQUEST_TIMEOUT": str(HANG_TIMEOUT_S)}
    with running_stack(*project, env) as stack:
        workers = set(stack.worker_pids())
        request, answered = in_background(lambda: stack.get(HANG_PATH))
        time.sleep(0.5)
        meanwhile = [stack.get("/healthz") for _ in range(5)]
        request.join(timeout=30)
        [hung] = answered
        assert hung.status == 504
        assert HANG_TIMEOUT_S <= hung.seconds < HANG_TIMEOUT_S + 2
        assert all(response.status == 200 and response.seconds < 1 for response in meanwhile)
        if compat.hung_request_replaces_the_worker(server, stack.plan()["interface"]):
            # The worker holding the request past the timeout goes, and a new one takes its place.
            wait_for(lambda: not workers <= set(stack.worker_pids()) and full_strength(stack), 30, "a new worker")
        else:
            # An async worker is not blocked by one awaiting request: it keeps serving, nothing to replace.
            assert set(stack.worker_pids()) == workers
        after = [stack.get("/api/io?ms=10") for _ in range(20)]
        assert [response.status for response in after] == [200] * 20


# The hostile clients below harm no worker, so one stack per server takes them all.
@pytest.fixture
def stack(project: tuple[Path, Path]) -> Iterator[Stack]:
    with running_stack(*project) as running:
        yield running


def test_200_slow_clients_do_not_slow_down_anyone_else(stack: Stack) -> None:
    clients = slow_clients(stack.http_port, 200)
    try:
        timings = []
        for _ in range(3):
            assert trickle(clients) == 200, "nginx dropped a slow client before its timeout"
            timings += [stack.get("/api/io?ms=10") for _ in range(10)]
            time.sleep(0.5)
        assert all(response.status == 200 for response in timings)
        slowest = max(response.seconds for response in timings)
        assert slowest < 0.5, f"slowest normal request {slowest:.2f} s with 200 slow clients"
    finally:
        for client in clients:
            client.close()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_200_mib_body_is_refused_by_nginx_before_the_app(stack: Stack, chunked: bool) -> None:
    status, sent = send_large_body(stack.http_port, 200 * 1024 * 1024, chunked)
    assert status == 413
    assert sent <= 20 * 1024 * 1024, f"nginx read {sent} bytes before refusing"
    time.sleep(0.3)  # nginx writes the access log line after the answer
    [line] = [line for line in stack.output().splitlines() if '"POST /api/io HTTP/1.1" 413' in line]
    assert "ua=- " in line, f"the request reached the app: {line}"


# Every way of climbing out of /static/ or reaching a dotfile that scanners try.
PROBES = [
    "/static/../canary.txt",
    "/static/..%2fcanary.txt",
    "/static/%2e%2e/canary.txt",
    "/static/%2e%2e%2fcanary.txt",
    "/static/%252e%252e/canary.txt",
    "/static..%2fcanary.txt",
    "/static../canary.txt",
    "/static/css/../../canary.txt",
    "/static/....//canary.txt",
    "/static/..%5ccanary.txt",
    "//static/../../canary.txt",
    "/static/../../canary.txt",
    "/static/../../../../../../etc/passwd",
    "/../../../../etc/passwd",
    "/static/.canary",
    "/static/%2ecanary",
    "/static/css/.canary",
    "/.canary",
    "/.env",
    "/.git/config",
    "/static/.git/config",
]


def test_no_probe_reaches_a_file_outside_the_static_root_or_a_dotfile(stack: Stack) -> None:
    canary = b"canary-" + os.urandom(8).hex().encode()
    static = stack.project / "build" / "static"
    planted = [
        stack.project / "canary.txt",
        stack.project / "build" / "canary.txt",
        static / ".canary",
        static / "css" / ".canary",
        stack.project / ".canary",
        static / ".git" / "config",
    ]
    for path in planted:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(canary)
    try:
        for probe in PROBES:
            status, body = raw_get(stack.http_port, probe)
            assert canary not in body, f"{probe} answered a planted file"
            assert b"root:x:0:0" not in body, f"{probe} answered /etc/passwd"
            assert status in {None, 400, 403, 404}, f"{probe}: {status}"
    finally:
        for path in planted:
            path.unlink()
