"""Faults on a real engine (Docker, started by the tests), under steady load through nginx, for each
of the four servers: a worker killed, the whole app server killed (alone, and among replicas), a
worker that allocates past the container's memory limit, and `docker compose stop`.

What the engine adds is written in the generated README (pyserve_template.compat.ENGINE_FAULTS, with
the figures measured here); these tests hold each server to it and print what they measured.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import ModuleType

import pytest

from pyserve_template import compat

from .conftest import SERVER_VARIATIONS, bake_with
from .containers import compose_stack, dns_valid_seconds, load_container_test
from .load import STEADY_PATH, STEADY_USERS, Outcome, SteadyLoad
from .stack import CGROUP_ROOT, cgroup_reader, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.container]

REPLICAS = 3
HEALTHY_AGAIN_S = 60  # the restarted server up, then its first healthcheck, with room
# `stop` under load: requests long enough that many are in flight when it comes.
STOP_PATH = "/api/io?ms=500"
# A client that got an error asks again after this pause: without it, 16 clients retrying at once
# take the CPU a restarting server needs (this host has 2), and the outage measured is theirs.
RETRY_PAUSE_S = 0.05
# nginx answers a request for a dead upstream at once (502, refused) or after proxy_connect_timeout
# (504, 300 ms in deploy/nginx/templates/snippets/proxy_to_app.conf.template), with room for a busy host.
NGINX_ANSWERS_S = 1.5
ENGINE_RESTARTS_WITHIN_S = 1.5

# The user's own code, as a user adds it: the sample app, and /hog, a request that allocates until
# the kernel's OOM killer stops the worker serving it.
MEMORY_HOG = {
    "wsgi": """
from {module} import {attribute} as sample

def app(environ, start_response):
    if environ["PATH_INFO"] == "/hog":
        held = []
        while True:
            held.append(bytearray(b"x") * 2**24)
    return sample(environ, start_response)
""",
    "asgi": """
from {module} import {attribute} as sample

async def app(scope, receive, send):
    if scope["type"] == "http" and scope["path"] == "/hog":
        held = []
        while True:
            held.append(bytearray(b"x") * 2**24)
    await sample(scope, receive, send)
""",
}


@dataclass
class Faulted:
    """A server's compose stack, running the sample app with /hog added, and the project's harness."""

    server: str
    stack: object  # the project's container_test.ComposeStack
    harness: ModuleType

    def processes(self, container: str) -> dict[int, dict]:
        listing = self.stack.docker_run("exec", container, "python", "-c", self.harness.PROCESSES)
        assert listing.returncode == 0, listing.stderr
        return {int(pid): info for pid, info in json.loads(listing.stdout).items()}

    def server_pid(self, container: str) -> int:
        """The app server: the child of the engine's init (compose: `init: true`)."""
        [pid] = [pid for pid, info in self.processes(container).items() if info["ppid"] == 1]
        return pid

    def workers(self, container: str) -> set[int]:
        processes = self.processes(container)
        server = self.server_pid(container)
        return {pid for pid, info in processes.items() if self.harness.is_worker(info, server)}

    def kill(self, container: str, pid: int) -> float:
        """`kill -9` inside the container, as `docker compose exec app kill -9 PID` does; returns when
        it was sent (time.monotonic()): a busy host may take a while to report it done."""
        sent = time.monotonic()
        result = self.stack.docker_run("exec", container, "sh", "-c", f"kill -9 {pid}")
        # 137: the container ended with its server before `exec` could report back.
        assert result.returncode in {0, 137}, result.stderr
        return sent

    def state(self, container: str) -> dict:
        inspected = self.stack.inspect(container)
        return {**inspected["State"], "RestartCount": inspected["RestartCount"]}

    def healthy(self, container: str) -> bool:
        return self.state(container).get("Health", {}).get("Status") == "healthy"

    def planned_workers(self, container: str) -> int:
        logs = self.stack.docker_run("logs", container)
        plan = [
            line for line in (logs.stdout + logs.stderr).splitlines() if line.startswith("{") and '"workers"' in line
        ]
        return json.loads(plan[-1])["workers"]

    def full_strength(self, container: str, gone: int | set[int]) -> bool:
        """As many workers as planned, none of those `gone` among them (and at least one gone)."""
        gone = {gone} if isinstance(gone, int) else gone
        workers = self.workers(container)
        return bool(gone) and not gone & workers and len(workers) == self.planned_workers(container)

    def nginx_errors(self) -> list[str]:
        return [line for line in self.stack.logs("nginx").splitlines() if "[error]" in line]

    def deaths_seen(self, container: str) -> str:
        """The server's log lines on workers that died."""
        logs = self.stack.docker_run("logs", container)
        return str([line for line in (logs.stdout + logs.stderr).splitlines() if "SIGKILL" in line or "died" in line])

    def oom_events(self, container: str, since: float) -> list[str]:
        """The engine's record of OOM kills in the container (`docker events --filter event=oom`)."""
        events = self.stack.docker_run(
            "events", "--since", str(int(since)), "--until", str(int(time.time()) + 1),
            "--filter", f"container={container}", "--filter", "event=oom",
        )  # fmt: skip
        return events.stdout.splitlines()

    def kernel_oom_kills(self, container: str) -> int:
        """The kernel's own count of OOM kills in the container's memory cgroup, read on the host."""
        pid = self.state(container)["Pid"]
        memberships = [line.split(":", 2) for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines()]
        places = [CGROUP_ROOT / hierarchy / path.lstrip("/") for _, hierarchy, path in memberships]
        return cgroup_reader([place for place in places if place.is_dir()]).oom_kills()


def add_memory_hog(project: Path) -> None:
    """Write the hog beside the sample app and serve it, by APP_MODULE in compose.override.yaml."""
    stack = load_container_test(project).STACK
    module, attribute = stack["app"]["module"].split(":")
    package = stack["template"]["project_slug"]
    code = MEMORY_HOG[stack["stack"]["interface"]].format(module=module, attribute=attribute)
    (project / package / "memory_hog.py").write_text(code)
    override = f'services:\n  app:\n    environment:\n      APP_MODULE: "{package}.memory_hog:app"\n'
    (project / "compose.override.yaml").write_text(override)


@pytest.fixture(scope="module", params=list(SERVER_VARIATIONS))
def faulted(request: pytest.FixtureRequest, cookies_session, docker) -> Iterator[Faulted]:
    """One stack per server, shared by this module's tests in order; `stop` comes last."""
    server = request.param
    project = bake_with(cookies_session, SERVER_VARIATIONS[server])
    add_memory_hog(project)
    with compose_stack(project, docker, f"faults-{server}") as stack:
        stack.up()
        yield Faulted(server, stack, load_container_test(project))


def caveat(server: str) -> str | None:
    """What the template says this server does when one of its workers dies, if not replace it."""
    return compat.FAULT_CAVEATS.get(server, {}).get("killed_worker")


def steady_load(stack: object, path: str = STEADY_PATH) -> SteadyLoad:
    return SteadyLoad(stack.http_port, path, STEADY_USERS, pause_after_failure=RETRY_PAUSE_S)


def outcome_name(outcome: Outcome) -> int | str:
    return outcome.status or outcome.error.split("(")[0]


def outage(outcomes: list[Outcome], since: float) -> tuple[float, Counter, Counter]:
    """Seconds from `since` until the last failed request ended; what the requests that were in
    flight at `since` and failed got; what the requests sent after it and failed got."""
    failed = [outcome for outcome in outcomes if outcome.failed]
    last = max((outcome.ended for outcome in failed), default=since)
    in_flight = Counter(outcome_name(outcome) for outcome in failed if outcome.started <= since)
    sent_after = Counter(outcome_name(outcome) for outcome in failed if outcome.started > since)
    return last - since, in_flight, sent_after


def only_in_flight_failed(faulted: Faulted, load: SteadyLoad, since: float) -> str:
    """A worker died at `since`: only requests it held fail (at most one per user), none sent after."""
    _, in_flight, sent_after = outage(load.outcomes, since)
    assert not sent_after, (sent_after, faulted.nginx_errors()[-10:])
    assert sum(in_flight.values()) <= STEADY_USERS, in_flight
    return f"{sum(in_flight.values())} of {len(load.outcomes)} failed, all in flight on it ({dict(in_flight)})"


def served_again_after_restart(faulted: Faulted, container: str, load: SteadyLoad, sent: float, since: float) -> str:
    """The server died between `sent` (the fault began) and `since` (it was seen done), and the engine
    restarted its container: what clients saw."""
    _, in_flight, sent_after = outage(load.outcomes, sent)
    seconds, _, _ = outage(load.outcomes, since)
    # A response cut after its headers came from a server still alive when the request reached it:
    # it was in flight on the dying server, whenever it was sent. (hypercorn, whose whole server exits
    # when an OOM-killed worker does, dies a moment after `since`, the 502 nginx gave for that worker.)
    if cut := sent_after.pop("IncompleteRead", 0):
        in_flight["IncompleteRead"] += cut
    # Requests in flight on it fail however far they had got (at most one per user). Every later one
    # is answered by nginx until the server listens again: 502 (refused), or 504 (no connection
    # within proxy_connect_timeout while the container has no address).
    assert sum(in_flight.values()) <= STEADY_USERS, in_flight
    assert sent_after and set(sent_after) <= {502, 504}, sent_after
    # Each of them at once, or after proxy_connect_timeout (300 ms): nginx never hangs on a dead upstream.
    assert all(outcome.ended - outcome.started < NGINX_ANSWERS_S for outcome in load.failures()), load.failures()
    # The engine restarts it at once (`restart: unless-stopped`; Docker's back-off starts at 100 ms),
    # by the engine's own clock, and nginx sends to it again no later than its own healthcheck passes.
    # How long the server itself takes to listen is the host's CPU: about ENGINE_RESTART_S on an idle
    # 2-CPU host, up to 4 times that with the suite's three lanes on one.
    state = faulted.state(container)
    restart_delay = engine_restart_delay(faulted, state)
    assert restart_delay < ENGINE_RESTARTS_WITHIN_S, state
    healthy_at = first_passing_healthcheck(faulted, state)
    last_failure = max(outcome.ended for outcome in load.failures()) + (time.time() - time.monotonic())
    assert last_failure <= healthy_at.timestamp(), (last_failure, healthy_at, state["Health"])
    documented = compat.ENGINE_RESTART_S[faulted.server]
    return (
        f"serving again {seconds:.1f} s after (documented: about {documented:g} s), the engine restarting it"
        f" {restart_delay:.2f} s after it died; in flight: {dict(in_flight)};"
        f" then nginx answered {dict(sent_after)}"
    )


def engine_restart_delay(faulted: Faulted, state: dict) -> float:
    """Seconds from the container's exit to the engine starting it again, by the engine's own clock."""
    moment = faulted.harness.moment
    return (moment(state["StartedAt"]) - moment(state["FinishedAt"])).total_seconds()


def first_passing_healthcheck(faulted: Faulted, state: dict) -> datetime:
    """When the first healthcheck since the container's (re)start passed, by the engine's clock."""
    moment = faulted.harness.moment
    started = moment(state["StartedAt"])
    probes = state["Health"]["Log"]
    passed = [moment(probe["End"]) for probe in probes if not probe["ExitCode"] and moment(probe["Start"]) >= started]
    return min(passed)


def restarted_and_healthy(faulted: Faulted, container: str, restarts: int) -> None:
    wait_for(lambda: faulted.state(container)["RestartCount"] > restarts, 30, "the engine restarting the container")
    wait_for(lambda: faulted.healthy(container), HEALTHY_AGAIN_S, "the restarted container healthy")


def test_queued_connections_outlive_a_worker_whose_socket_is_its_own(faulted: Faulted) -> None:
    # Where each worker listens on a socket of its own, compose asks the kernel to move the
    # connections queued on an exiting worker's socket to another's, instead of resetting them.
    migrates = faulted.stack.exec("app", "cat", "/proc/sys/net/ipv4/tcp_migrate_req").stdout.strip()
    assert migrates == ("1" if faulted.server in compat.SOCKET_PER_WORKER else "0")


def test_a_killed_worker_is_replaced_and_the_container_stays_healthy(faulted: Faulted) -> None:
    stack, server = faulted.stack, faulted.server
    container = stack.container("app")
    restarts = faulted.state(container)["RestartCount"]
    victim = min(faulted.workers(container))
    with steady_load(stack).running() as load:
        time.sleep(1)
        kill_sent = faulted.kill(container, victim)
        killed_at = time.monotonic()  # the kill is done when `docker exec` returns
        if caveat(server):
            # The whole server exits (compat.FAULT_CAVEATS); the engine's restart policy brings it back.
            restarted_and_healthy(faulted, container, restarts)
        else:
            replaced_at = wait_for(lambda: faulted.full_strength(container, victim), 30, "a new worker")
            print(f"{server}: a killed worker replaced within {replaced_at - killed_at:.1f} s")
            assert faulted.state(container)["RestartCount"] == restarts
        time.sleep(1)
    assert faulted.healthy(container)
    assert len(load.outcomes) > 200
    seen = (
        served_again_after_restart(faulted, container, load, kill_sent, killed_at)
        if caveat(server)
        else only_in_flight_failed(faulted, load, killed_at)
    )
    print(f"{server}: a worker killed: {seen}")


def test_a_killed_server_is_restarted_by_the_engine_and_nginx_answers_meanwhile(faulted: Faulted) -> None:
    stack, server = faulted.stack, faulted.server
    container = stack.container("app")
    restarts = faulted.state(container)["RestartCount"]
    with steady_load(stack).running() as load:
        time.sleep(1)
        kill_sent = faulted.kill(container, faulted.server_pid(container))
        killed_at = time.monotonic()
        restarted_and_healthy(faulted, container, restarts)
        time.sleep(1)
    seen = served_again_after_restart(faulted, container, load, kill_sent, killed_at)
    print(f"{server}: the server killed: {seen}")


def test_among_replicas_a_killed_server_fails_no_get_it_had_not_begun_to_answer(faulted: Faulted) -> None:
    stack, server = faulted.stack, faulted.server
    stack.up("--scale", f"app={REPLICAS}")
    try:
        victim = stack.containers("app")[-1]
        restarts = faulted.state(victim)["RestartCount"]
        with steady_load(stack).running() as load:
            time.sleep(1)
            faulted.kill(victim, faulted.server_pid(victim))
            killed_at = time.monotonic()
            restarted_and_healthy(faulted, victim, restarts)
            time.sleep(1)
    finally:
        stack.run("up", "--detach", "--wait", "--no-recreate", "--scale", "app=1")
        time.sleep(dns_valid_seconds(faulted.harness.PROJECT) + 1)  # nginx forgets the replicas that left
    assert len(load.outcomes) > 500
    # nginx sends a GET that failed on the dead replica to another, unless it had already passed the
    # response's headers on to the client: a response cut mid-way cannot be taken back.
    failed = load.failures()
    assert all(outcome.cut and outcome.started <= killed_at for outcome in failed), failed[:20]
    assert len(failed) <= STEADY_USERS, failed
    cut = f"{len(failed)} cut mid-response"
    print(f"{server}: one of {REPLICAS} replicas' server killed: {len(load.outcomes)} GETs, {cut}")


def test_a_worker_past_the_memory_limit_is_oom_killed_and_the_others_keep_serving(faulted: Faulted) -> None:
    stack, server = faulted.stack, faulted.server
    container = stack.container("app")
    before = faulted.state(container)
    workers = faulted.workers(container)
    kills_before = faulted.kernel_oom_kills(container)
    since = time.time()
    with steady_load(stack).running() as load:
        time.sleep(1)
        hog_sent = time.monotonic()
        hog = stack.get("/hog", timeout=60)
        killed_at = time.monotonic()
        if caveat(server):
            restarted_and_healthy(faulted, container, before["RestartCount"])
        else:
            # The kernel takes the worker that grew, and now and then a second one: a dying process
            # leaves the cgroup's task list before its memory is unmapped, and an allocation in that
            # window finds no victim in progress (dmesg: a 25 MiB worker killed 7 ms after the 400 MiB
            # one, in 2 of 6 runs here). The server replaces each.
            wait_for(
                lambda: workers - faulted.workers(container),
                10,
                "a worker gone",
                seen=lambda: (
                    f"workers {sorted(workers)} before, {sorted(faulted.workers(container))} now; "
                    f"OOM events {len(faulted.oom_events(container, since))}; {faulted.deaths_seen(container)}"
                ),
            )
            wait_for(lambda: faulted.full_strength(container, workers - faulted.workers(container)), 30, "new workers")
            killed = workers - faulted.workers(container)
            assert workers - killed, "no worker of those before lived on"
        time.sleep(1)
    assert hog.status == 502, hog  # the worker died holding it; nginx answered for it
    after = faulted.state(container)
    engine_saw = len(faulted.oom_events(container, since))
    if caveat(server):
        # The container's main process exited after an OOM kill in it: the engine says so.
        assert engine_saw >= 1, "the engine recorded no OOM kill"
        assert after["OOMKilled"] is True and after["RestartCount"] == before["RestartCount"] + 1
        seen = served_again_after_restart(faulted, container, load, hog_sent, killed_at)
    else:
        # The kernel's count is the record: the engine's `oom` event missed a worker's kill that the
        # kernel counted in each of 7 runs here with two busy processes beside the stack (cgroup v1;
        # caught in the 2 runs without), so it is reported, not required.
        kills = faulted.kernel_oom_kills(container) - kills_before
        assert kills >= 1, f"the kernel counted no OOM kill; {faulted.deaths_seen(container)}"
        # Only a worker died: the container runs on, and inspect's OOMKilled (its main process) stays false.
        assert after["OOMKilled"] is False and after["RestartCount"] == before["RestartCount"]
        assert after["Status"] == "running" and faulted.healthy(container)
        in_flight = only_in_flight_failed(faulted, load, killed_at)
        seen = f"{len(killed)} of {len(workers)} workers killed, replaced; {kills} OOM kills counted; {in_flight}"
    recorded = f"{engine_saw} engine OOM events, OOMKilled {after['OOMKilled']}"
    print(f"{server}: a worker past the memory limit: {recorded}; {seen}")


def test_compose_stop_under_load_lets_requests_in_flight_finish(faulted: Faulted) -> None:
    stack, server = faulted.stack, faulted.server
    containers = {service: stack.container(service) for service in ("app", "nginx")}
    grace = min(float(service["stop_grace_period"].rstrip("s")) for service in stack.config()["services"].values())
    with steady_load(stack, STOP_PATH).running() as load:
        time.sleep(1.5)
        stop_at = time.monotonic()
        stack.run("stop", timeout=120)
        stopped_in = time.monotonic() - stop_at
    in_flight = [outcome for outcome in load.outcomes if outcome.started < stop_at]
    assert len(in_flight) >= STEADY_USERS and all(outcome.status == 200 for outcome in in_flight), in_flight
    # After the stop began a request is refused or its idle connection closed; none gets a 5xx.
    assert {outcome.status for outcome in load.outcomes} <= {200, None}
    assert stopped_in < min(grace, compat.ENGINE_STOP_S * 2 + 2), stopped_in
    exit_codes = {service: faulted.state(container)["ExitCode"] for service, container in containers.items()}
    assert exit_codes == {"app": 0, "nginx": 0}, exit_codes  # both stopped gracefully, neither killed
    print(f"{server}: stop under load: {len(in_flight)} requests in flight finished; stopped in {stopped_in:.1f} s")
