"""`make deploy` on real engines (Docker and podman, started by the tests), under a steady load through nginx
with WebSockets open: a new version takes over without a failed request, and a version that fails its
health check or whose nginx config nginx refuses never takes the old one's place.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from pyserve_template.baking import project_venv

from .browser import element, errors_in, open_page
from .conftest import bake_with
from .containers import CONTAINER_TEST_TIMEOUT, compose_stack, load_container_test
from .engine import Engine
from .load import REOPEN_PAUSE_S, REQUEST_TIMEOUT_S, STEADY_USERS, OpenWebSockets, SteadyLoad
from .stack import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.container]

OPEN_WEBSOCKETS = 200
# A refused client asks again after this long, so that the refusals counted are a rate, not a spin.
REFUSED_RETRY_S = 0.1
# nginx answers its own health check in its default server: for a name it does not serve (site.conf.template).
NGINX_HEALTH_HOST = "nginx-health.invalid"
HEALTH_PATH = "/healthz"
SAMPLE_HEALTH = 'return {"status": "ok"}'
GOING_AWAY = 1001


def make_deploy(project: Path, engine: Engine, stack: ModuleType) -> tuple[int, str, float]:
    """The project's own `make deploy`, on the stack's compose project: exit code, output, seconds."""
    env = {
        **engine.env,
        "COMPOSE_PROJECT_NAME": stack.name,
        "HTTP_PORT": str(stack.http_port),
        **stack.defaults,
        **stack.env,
    }
    started = time.monotonic()
    command = ["make", "deploy", f"PYSERVE={project_venv(project) / 'bin' / 'pyserve'}"]
    result = subprocess.run(
        command, cwd=project, env=env, capture_output=True, text=True, timeout=CONTAINER_TEST_TIMEOUT
    )
    output = result.stdout + result.stderr
    print(output)
    return result.returncode, output, time.monotonic() - started


def app_file(project: Path) -> Path:
    return next(project.glob("*/app.py"))


def release(project: Path, version: str) -> None:
    """A new version of the sample: /healthz says which."""
    path = app_file(project)
    text = path.read_text()
    start = text.index('return {"status": "ok"')
    end = text.index("}", start) + 1
    path.write_text(text[:start] + f'return {{"status": "ok", "version": "{version}"}}' + text[end:])


def versions(load: SteadyLoad) -> list[str]:
    return [json.loads(outcome.body).get("version", "1") for outcome in load.outcomes if outcome.status == 200]


class Peak:
    """The most of something sampled over and over on a thread while the `with` block runs."""

    def __init__(self, stack: ModuleType) -> None:
        self.stack = stack
        self.most = 0.0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._keep_sampling, daemon=True)

    def sample(self) -> float:
        raise NotImplementedError

    def _keep_sampling(self) -> None:
        while not self._stop.is_set():
            self.most = max(self.most, self.sample())
            self.samples += 1

    def __enter__(self) -> Peak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


class MemoryPeak(Peak):
    """The app containers' memory in MiB, summed, as the engine measures it (`docker stats`)."""

    last_listing = ""

    def sample(self) -> float:
        # By ID: the docker CLI drops a name's first character, Docker's "/", which podman's API has not got.
        replicas = {container[:12] for container in self.stack.run("ps", "--quiet", "app").stdout.split()}
        listing = self.stack.docker_run("stats", "--no-stream", "--format", "{{.ID}} {{.MemUsage}}")
        self.last_listing = listing.stdout + listing.stderr
        total = 0.0
        for line in listing.stdout.splitlines():
            container, used = line.split(" ", 1)
            if container[:12] in replicas:
                total += mebibytes(used.split("/")[0].strip())
        return total


def mebibytes(text: str) -> float:
    for unit, factor in (("GiB", 1024), ("MiB", 1), ("KiB", 1 / 1024), ("B", 1 / 1024**2)):
        if text.endswith(unit):
            return float(text.removesuffix(unit)) * factor
    raise ValueError(text)


@dataclasses.dataclass
class Deployed:
    project: Path
    stack: ModuleType
    engine: Engine


@pytest.fixture(scope="module", params=["docker", "podman"])
def deployed(cookies_session, request: pytest.FixtureRequest) -> Iterator[Deployed]:
    """A FastAPI project (WebSockets) started by its first `make deploy`; the tests below deploy to it in order."""
    engine: Engine = request.getfixturevalue(request.param)
    project = bake_with(cookies_session, {})
    with engine.healthchecks(), compose_stack(project, engine, f"deploy-{request.param}") as stack:
        code, output, _ = make_deploy(project, engine, stack)
        assert code == 0 and "nothing was running: started and healthy" in output, output
        yield Deployed(project, stack, engine)


def test_the_first_deploy_starts_the_stack(deployed: Deployed) -> None:
    stack = deployed.stack
    assert json.loads(stack.get(HEALTH_PATH).body) == {"status": "ok"}


def test_a_new_version_takes_over_without_a_failed_request(deployed: Deployed, tmp_path: Path) -> None:
    """Under 16 clients and 200 WebSockets, and the sample page open in a browser, whose own
    WebSocket opens again after the old version closed it."""
    project, stack = deployed.project, deployed.stack
    before = stack.containers("app")
    release(project, "2")
    load = SteadyLoad(stack.http_port, HEALTH_PATH, STEADY_USERS, keep_bodies=True)
    sockets = OpenWebSockets(stack.http_port, OPEN_WEBSOCKETS)
    page_url = f"http://localhost:{stack.http_port}/"
    with (
        open_page(page_url, {"localhost": "127.0.0.1"}, tmp_path) as page,
        sockets.running(),
        load.running(),
        MemoryPeak(stack) as memory,
    ):
        wait_for(lambda: element(page, "live", "dataset.opens") == "1", 10, "the page's WebSocket open")
        code, output, seconds = make_deploy(project, deployed.engine, stack)
        time.sleep(2)
        wait_for(lambda: element(page, "live", "dataset.opens") == "2", 10, "the page's WebSocket open again")
        page_said = (element(page, "live"), element(page, "live", "dataset.lastClose"))
        page_errors = errors_in(page.events)
    seen = versions(load)
    print(
        f"deploy: {seconds:.1f} s, {load.count()} requests, {len(load.failures())} failed,"
        f" versions {seen[0]} -> {seen[-1]}, WebSockets closed {dict(sockets.closes)}, opened {sockets.opened},"
        f" peak app memory {memory.most:.0f} MiB; the page: {page_said}"
    )
    assert code == 0, output
    assert page_said == ("WebSocket open again (opened 2 times)", str(GOING_AWAY)) and not page_errors, page_errors
    assert memory.most > 0, memory.last_listing
    assert load.count() > 200 and not load.failures(), load.failures()[:5]
    assert seen[0] == "1" and seen[-1] == "2" and "1" not in seen[-STEADY_USERS * 4 :]
    assert set(sockets.closes) == {GOING_AWAY} and sum(sockets.closes.values()) >= OPEN_WEBSOCKETS
    assert sockets.opened >= 2 * OPEN_WEBSOCKETS and not sockets.failed_opens
    after = stack.containers("app")
    assert len(after) == len(before) and not set(after) & set(before)


def test_a_version_that_fails_its_health_check_never_takes_over(deployed: Deployed) -> None:
    project, stack = deployed.project, deployed.stack
    before = stack.containers("app")
    healthy_source = app_file(project).read_text()
    app_file(project).write_text(healthy_source + '\nraise RuntimeError("broken on purpose")\n')
    load = SteadyLoad(stack.http_port, HEALTH_PATH, STEADY_USERS, keep_bodies=True)
    try:
        with load.running():
            code, output, seconds = make_deploy(project, deployed.engine, stack)
            time.sleep(1)
    finally:
        app_file(project).write_text(healthy_source)
    failed = [line for line in output.splitlines() if line.startswith("deploy: FAILED")]
    print(f"broken: {seconds:.1f} s, {load.count()} requests, {len(load.failures())} failed; {failed}")
    assert code != 0 and len(failed) == 1 and "the new version failed its health check" in failed[0], output
    nginx_errors = [line for line in stack.logs("nginx").splitlines() if "[error]" in line]
    assert load.count() > 100 and not load.failures(), (load.failures()[:2], nginx_errors[-5:])
    assert set(versions(load)) == {"2"}
    assert stack.containers("app") == before
    assert len(stack.run("ps", "--all", "--quiet", "app").stdout.split()) == len(before)


def test_an_nginx_config_nginx_refuses_never_goes_live(deployed: Deployed) -> None:
    project, stack = deployed.project, deployed.stack
    before = {service: stack.containers(service) for service in ("app", "nginx")}
    template = project / "deploy" / "nginx" / "templates" / "limits.conf.template"
    healthy_template = template.read_text()
    template.write_text(healthy_template + "\nlimit_req_zone nowhere;\n")
    try:
        code, output, _ = make_deploy(project, deployed.engine, stack)
    finally:
        template.write_text(healthy_template)
    failed = [line for line in output.splitlines() if line.startswith("deploy: FAILED")]
    assert code != 0 and len(failed) == 1 and "the new nginx config is refused" in failed[0], output
    assert {service: stack.containers(service) for service in before} == before
    assert stack.get(HEALTH_PATH).status == 200


def test_an_nginx_change_goes_live_refusing_connections_only_while_the_container_is_replaced(
    deployed: Deployed,
) -> None:
    """One container at a time can hold the host's port: from the old nginx's stop until the new one
    listens, connections are refused. Measured here; within the deploy's own replacement of it.

    On podman a connection can also hang: a SYN that netavark's DNAT sends to the old container as
    its network goes away leaves a conntrack entry (SYN_SENT, 120 s) that the client's retries keep
    following to the vanished address, until the client's own timeout (kubernetes#101607 is the
    same mechanism). Docker's userland proxy answers loopback connections itself and refuses them."""
    project, stack = deployed.project, deployed.stack
    nginx_before = stack.containers("nginx")
    site = project / "deploy" / "nginx" / "templates" / "site.conf.template"
    site.write_text(site.read_text().replace('return 200 "ok\\n";', 'return 200 "ok, release 2\\n";', 1))
    load = SteadyLoad(stack.http_port, HEALTH_PATH, STEADY_USERS, pause_after_failure=REFUSED_RETRY_S)
    sockets = OpenWebSockets(stack.http_port, OPEN_WEBSOCKETS)
    with sockets.running(), load.running():
        time.sleep(2)
        code, output, seconds = make_deploy(project, deployed.engine, stack)
        time.sleep(2 + REOPEN_PAUSE_S)
    failures = load.failures()
    window = max(each.started for each in failures) - min(each.started for each in failures) if failures else 0.0
    hung = [each for each in failures if each.ended - each.started >= REQUEST_TIMEOUT_S]
    print(
        f"nginx change: {seconds:.1f} s, {load.count()} requests, {len(failures)} failed, begun within {window:.1f} s"
        f" ({STEADY_USERS} clients retrying every {REFUSED_RETRY_S} s), {len(hung)} of them hung until the"
        f" client's {REQUEST_TIMEOUT_S} s timeout; WebSockets closed {dict(sockets.closes)},"
        f" {sockets.failed_opens} opens refused, {sockets.holding} open again"
    )
    assert code == 0 and "nginx replaced" in output, output
    assert stack.get("/nginx-health", {"Host": NGINX_HEALTH_HOST}).body == b"ok, release 2\n"
    # (The app's replicas were replaced too: its image holds the project's files, deploy/nginx/ among them.)
    assert stack.containers("nginx") != nginx_before
    # Refused or closed without an answer, never an error answered: and only while nginx was replaced.
    assert all(each.status is None for each in failures), failures[:3]
    # Only while the container was replaced: the deploy times it from the old one's stop to the new
    # one's first passing health check (which takes the engine longer on a busy machine).
    replaced_in = float(re.search(r"nginx replaced in ([\d.]+) s", output).group(1))
    assert window <= replaced_in + 1, (window, replaced_in)
    if deployed.engine.kind == "docker":
        assert not hung, hung[:3]
    assert all("TimeoutError" in each.error for each in hung), hung[:3]
    assert sockets.holding == OPEN_WEBSOCKETS and sum(sockets.closes.values()) >= OPEN_WEBSOCKETS


# A database project's budget: the plan gives each replica's pools a share of it with room for a
# deploy's new replica beside the old one (DEPLOY_SURGE), and for the release step.
DB_BUDGET = 10
DB_LOAD_USERS = 24
# A release whose migration the database refuses (the column it references has no table).
BROKEN_MIGRATION = ("0002_referrer.sql", "ALTER TABLE visits ADD COLUMN referrer bigint REFERENCES nowhere (id);\n")


class ConnectionPeak(Peak):
    """The database's client connections but the sampler's own (pg_stat_activity)."""

    def __init__(self, stack: ModuleType, sql: Callable[[ModuleType, str], str]) -> None:
        super().__init__(stack)
        self.sql = sql

    def sample(self) -> float:
        query = "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
        return int(self.sql(self.stack, query + " AND pid <> pg_backend_pid()"))


def test_a_database_project_deploys_within_its_budget_and_a_failed_release_step_changes_nothing(
    cookies_session, docker: Engine
) -> None:
    """A release step the database refuses stops the deploy with the old version serving; a deploy
    under load runs both versions' pools at once, and pg_stat_activity never shows more than the budget."""
    project = bake_with(cookies_session, {"database": "postgres", "db_max_connections": str(DB_BUDGET)})
    sql = load_container_test(project).sql
    with compose_stack(project, docker, "deploy-db") as stack:
        stack.env["POSTGRES_PASSWORD"] = uuid.uuid4().hex
        code, output, _ = make_deploy(project, docker, stack)
        assert code == 0, output
        plan = json.loads([line for line in stack.logs("app").splitlines() if '"db_pool_size"' in line][-1])
        per_replica = plan["workers"] * plan["db_pool_size"]

        before = stack.containers("app")
        migration = next(project.glob("*/migrations")) / BROKEN_MIGRATION[0]
        migration.write_text(BROKEN_MIGRATION[1], encoding="utf-8")
        load = SteadyLoad(stack.http_port, "/api/db?ms=10", 4)
        try:
            with load.running():
                code, output, _ = make_deploy(project, docker, stack)
        finally:
            migration.unlink()
        failed = [line for line in output.splitlines() if line.startswith("deploy: FAILED")]
        assert code != 0 and len(failed) == 1 and "the release step failed (migration 0002_referrer" in failed[0]
        assert load.count() > 20 and not load.failures(), load.failures()[:5]
        assert stack.containers("app") == before

        release(project, "2")
        load = SteadyLoad(stack.http_port, "/api/db?ms=50", DB_LOAD_USERS)
        with load.running(), ConnectionPeak(stack, sql) as connections:
            time.sleep(2)
            code, output, seconds = make_deploy(project, docker, stack)
            time.sleep(1)
    print(
        f"database deploy: {seconds:.1f} s, {load.count()} queries, {len(load.failures())} failed; at most"
        f" {int(connections.most)} connections in {connections.samples} samples (budget {DB_BUDGET},"
        f" {per_replica} a replica)"
    )
    assert code == 0, output
    assert load.count() > 200 and not load.failures(), load.failures()[:5]
    # Both versions held their pools at once, and together stayed within the budget.
    assert per_replica < int(connections.most) <= DB_BUDGET
