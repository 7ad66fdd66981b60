"""The database budget, proven on a real PostgreSQL (pyserve_template/postgres.py: max_connections 20, of which
PostgreSQL keeps 3 for superusers).

Each framework's stack runs under `make local` with DATABASE_URL and a budget of 10 connections, and
is loaded on /api/db with several times the requests the plan lets it hold: every request is
answered (waiting for the pool is fine, errors are not), the server never refuses a connection, and
pg_stat_activity never shows more than the budget. Twice the budget in clients on a plan without a
budget shows the failure the budget prevents; two stacks sharing one budget (MAX_REPLICAS=2) stay within it
together; /healthz answers once the database has gone, /readyz says it has.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pyserve_template import records
from pyserve_template.baking import project_venv
from pyserve_template.postgres import ConnectionWatch, Postgres, running_postgres

from .load import SteadyLoad
from .stack import Stack, running_stack

pytestmark = pytest.mark.e2e

SERVER_MAX_CONNECTIONS = 20
BUDGET = 10
QUERY_PATH = "/api/db?ms=50"
LOAD_SECONDS = 5
# The load: this many times the requests the plan lets one stack hold at once.
OVERLOAD = 4
# Without a budget, clients twice the budget: pools sized to the requests in flight take one each,
# past what PostgreSQL gives a role without superuser rights.
UNBUDGETED_LOAD = 2 * BUDGET
# Two replicas and a deploy's one more (DEPLOY_SURGE) sharing a budget, after the release step's 2:
# 4 connections each, one for each of the WSGI stack's 3 workers at least.
SHARED_BUDGET = 14

# Every framework on each interface it speaks, its server left to `auto`.
STACKS = {
    f"{name}-{interface}": {"framework": name, "interface": interface}
    for name, framework in records.FRAMEWORKS.items()
    for interface in framework.interfaces
}
WSGI, ASGI = "flask-wsgi", "fastapi-asgi"


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    with running_postgres(SERVER_MAX_CONNECTIONS) as server:
        yield server


def baked(bake_to_run, stack: str, **changes: str) -> tuple[Path, Path]:
    project = bake_to_run(**STACKS[stack], database="postgres", db_max_connections=str(BUDGET), **changes)
    return project, project_venv(project)


def in_flight(stack: Stack) -> int:
    """The most queries the stack's plan lets it run at once: workers x each worker's pool."""
    plan = stack.plan()
    return plan["workers"] * plan["db_pool_size"]


@contextlib.contextmanager
def database_stack(bake_to_run, name: str, postgres: Postgres, **env: str) -> Iterator[Stack]:
    project, venv = baked(bake_to_run, name)
    with running_stack(project, venv, env={"DATABASE_URL": postgres.fresh_database(), **env}) as stack:
        yield stack


@dataclass
class Overload:
    loads: list[SteadyLoad]
    most_connections: int  # the app's connections in pg_stat_activity, sampled every 20 ms
    refused: int  # connections the server refused meanwhile, for want of a slot
    room_for_another: bool  # whether one more client could connect at the end, under load

    def summary(self) -> str:
        queries, failed = sum(load.count() for load in self.loads), sum(len(load.failures()) for load in self.loads)
        return (
            f"{queries} queries, {failed} failed, at most {self.most_connections} connections,"
            f" {self.refused} refused, room for another: {self.room_for_another}"
        )


def overload(stacks: list[Stack], users: int, postgres: Postgres) -> Overload:
    """`users` clients on each stack's /api/db for LOAD_SECONDS."""
    refused_before = postgres.refusals()
    loads = [SteadyLoad(stack.http_port, QUERY_PATH, users) for stack in stacks]
    with ConnectionWatch(postgres).running() as watch, contextlib.ExitStack() as running:
        for load in loads:
            running.enter_context(load.running())
        time.sleep(LOAD_SECONDS)
        room = postgres.another_client_connects()
    return Overload(loads, watch.most, postgres.refusals() - refused_before, room)


@pytest.mark.parametrize("name", STACKS)
def test_every_framework_queries_through_a_pool_within_the_budget(bake_to_run, postgres: Postgres, name: str) -> None:
    with database_stack(bake_to_run, name, postgres) as stack:
        plan = stack.plan()
        assert plan["db_max_connections"] == BUDGET and plan["max_replicas"] == 1
        assert 1 <= in_flight(stack) <= BUDGET, plan["reasons"]
        ready = stack.get("/readyz")
        assert (ready.status, json.loads(ready.body)) == (200, {"database": "ok"})
        answered = [stack.get("/api/db?ms=10") for _ in range(2)]
        # Through the sample's own table, which `make local`'s release step created: two visits.
        assert [(each.status, json.loads(each.body)) for each in answered] == [
            (200, {"db_ms": 10, "visit": 1}),
            (200, {"db_ms": 10, "visit": 2}),
        ]
        result = overload([stack], OVERLOAD * in_flight(stack), postgres)
    print(f"{name}: {OVERLOAD * in_flight(stack)} clients for {in_flight(stack)} planned, {result.summary()}")
    postgres.wait_until_no_app_connections()  # the workers' connections went with them
    [load] = result.loads
    assert load.count() > in_flight(stack), "the load barely ran"
    assert not load.failures(), load.failures()[:5]
    assert result.refused == 0 and result.room_for_another
    assert 0 < result.most_connections <= BUDGET


@pytest.mark.parametrize("name", [WSGI, ASGI])
def test_without_a_budget_twice_the_budget_in_clients_takes_more_than_it(
    bake_to_run, postgres: Postgres, name: str
) -> None:
    """What the budget prevents: pools sized to the requests in flight take what the database has."""
    with database_stack(bake_to_run, name, postgres, DB_MAX_CONNECTIONS="none") as stack:
        assert stack.plan()["db_max_connections"] is None
        result = overload([stack], UNBUDGETED_LOAD, postgres)
    print(f"{name} without a budget: {UNBUDGETED_LOAD} clients, {result.summary()}")
    # Its pools took every slot PostgreSQL gives a role without superuser rights: the next replica,
    # a migration or a person with psql is refused.
    assert result.most_connections > BUDGET and result.refused > 0 and not result.room_for_another


def test_two_replicas_share_one_budget(bake_to_run, postgres: Postgres) -> None:
    budget = str(SHARED_BUDGET)
    with (
        database_stack(bake_to_run, WSGI, postgres, MAX_REPLICAS="2", DB_MAX_CONNECTIONS=budget) as wsgi,
        database_stack(bake_to_run, ASGI, postgres, MAX_REPLICAS="2", DB_MAX_CONNECTIONS=budget) as asgi,
    ):
        assert in_flight(wsgi) + in_flight(asgi) <= SHARED_BUDGET
        assert in_flight(wsgi) <= SHARED_BUDGET // 2 and in_flight(asgi) <= SHARED_BUDGET // 2
        result = overload([wsgi, asgi], OVERLOAD * max(in_flight(wsgi), in_flight(asgi)), postgres)
        print(f"two replicas: {in_flight(wsgi)} + {in_flight(asgi)} planned, {result.summary()}")
    assert all(load.count() > 0 and not load.failures() for load in result.loads)
    assert result.refused == 0 and result.room_for_another
    assert 0 < result.most_connections <= SHARED_BUDGET


@pytest.mark.parametrize("name", [WSGI, ASGI, "django-wsgi"])
def test_healthz_never_touches_the_database_and_readyz_does(bake_to_run, name: str) -> None:
    """A database of the test's own, stopped under the running stack: /healthz still answers, /readyz
    turns from ready to unavailable."""
    project, venv = baked(bake_to_run, name)
    with contextlib.ExitStack() as database:
        server = database.enter_context(running_postgres(SERVER_MAX_CONNECTIONS))
        with running_stack(project, venv, env={"DATABASE_URL": server.fresh_database()}) as stack:
            ready = stack.get("/readyz")
            assert (ready.status, json.loads(ready.body)) == (200, {"database": "ok"})
            database.close()  # a fast stop: the server ends every connection and is gone
            assert stack.get("/healthz").status == 200
            not_ready = stack.get("/readyz")
            assert (not_ready.status, json.loads(not_ready.body)) == (503, {"database": "unavailable"})
