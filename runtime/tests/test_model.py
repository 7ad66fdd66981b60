"""The tuning model, table by table: limits parsed, workers and threads planned, overrides obeyed."""

from __future__ import annotations

import math

import pytest
from stacks import STACK

from pyserve_runtime import values
from pyserve_runtime.tuning import inputs as plan_inputs
from pyserve_runtime.tuning import model as tuning
from pyserve_runtime.tuning import nginx as nginx_sizing
from pyserve_runtime.tuning import presentation
from pyserve_runtime.tuning.model import Found

MIB = values.MIB
GIB = 1024 * MIB


# Memory figures of the model's tests' own, so that they do not move when a record's measurement
# does: a worker 60 MiB, the server and its metrics endpoint 70 MiB.
FIGURES = {"worker_memory_bytes": 60 * MIB, "server_memory_bytes": 70 * MIB}


def planned(*inputs: object, **overrides: object) -> tuning.Plan:
    """The model for (cpus, memory, framework, interface, server, workload), with FIGURES unless given."""
    return tuning.plan(*inputs, **{**FIGURES, **overrides})


@pytest.mark.parametrize(
    ("text", "cpus"),
    [("1", 1.0), ("2", 2.0), ("0.5", 0.5), (" 1.5 ", 1.5), ("500m", 0.5), ("250m", 0.25), ("1024", 1024.0)],
)
def test_cpu_limits_parse_to_fractional_cores(text: str, cpus: float) -> None:
    assert values.parse_cpus(text) == cpus


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "is not a number"),
        ("two", "is not a number"),
        ("0", "is not a finite number > 0"),
        ("-1", "is not a finite number > 0"),
        ("0m", "is not a finite number > 0"),
        ("nan", "is not a finite number > 0"),
        ("inf", "is not a finite number > 0"),
        ("1025", "is larger than any machine"),
        ("1e9", "is larger than any machine"),
    ],
)
def test_cpu_limits_that_cannot_be_refuse_with_field_value_and_accepted(text: str, problem: str) -> None:
    with pytest.raises(values.TuningError) as caught:
        values.parse_cpus(text, "cpu_limit")
    accepted = "give cores as a number > 0 and <= 1024 (e.g. 0.5, 2 or 500m)"
    assert str(caught.value) == f"cpu_limit: {text!r} {problem}; {accepted}"


@pytest.mark.parametrize(
    ("text", "bytes_"),
    [
        ("512MiB", 512 * MIB),
        ("2GiB", 2 * GIB),
        ("1.5G", 1536 * MIB),
        ("768M", 768 * MIB),
        ("1024", GIB),  # a bare number is MiB
        ("512Mi", 512 * MIB),
        ("512mib", 512 * MIB),
        ("1T", 1024 * GIB),
        ("524288K", 512 * MIB),
        ("536870912B", 512 * MIB),
    ],
)
def test_memory_limits_parse_to_bytes(text: str, bytes_: int) -> None:
    assert values.parse_memory(text) == bytes_


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "is not a memory size"),
        ("lots", "is not a memory size"),
        ("512XB", "is not a memory size"),
        ("Mi", "is not a memory size"),
        ("-5M", "is not a memory size"),
        ("1e3M", "is not a memory size"),
        ("0", "is not more than 0"),
        ("0.0000001", "is not more than 0"),
        ("65T", "is larger than any machine"),
    ],
)
def test_memory_limits_that_cannot_be_refuse(text: str, problem: str) -> None:
    with pytest.raises(values.TuningError) as caught:
        values.parse_memory(text, "memory_limit")
    assert str(caught.value).startswith(f"memory_limit: {text!r} {problem}; give a size such as 512MiB")


# cpus, memory, framework, interface, server, workload -> workers, threads, worker class
PLANS = {
    "wsgi io 1 cpu: 2*CPU+1 workers, each with threads for all 64 in flight": (
        (1, None, "flask", "wsgi", "gunicorn", "io_bound"),
        (3, 64, "gthread"),
    ),
    "wsgi io 0.5 cpu: never 0 workers": ((0.5, None, "flask", "wsgi", "gunicorn", "io_bound"), (2, 32, "gthread")),
    "wsgi io 0.03 cpu: threads floor": ((0.03, None, "flask", "wsgi", "gunicorn", "io_bound"), (2, 4, "gthread")),
    "wsgi mixed 2 cpu: 32 in flight per cpu": ((2, None, "django", "wsgi", "gunicorn", "mixed"), (5, 64, "gthread")),
    "wsgi mixed 1.5 cpu rounds up": ((1.5, None, "django", "wsgi", "gunicorn", "mixed"), (4, 48, "gthread")),
    "wsgi cpu-bound 1 cpu: sync, one per core + 1": (
        (1, None, "flask", "wsgi", "gunicorn", "cpu_bound"),
        (2, 1, "sync"),
    ),
    "wsgi cpu-bound 0.5 cpu": ((0.5, None, "flask", "wsgi", "gunicorn", "cpu_bound"), (2, 1, "sync")),
    "wsgi cpu-bound 4 cpu": ((4, None, "django", "wsgi", "gunicorn", "cpu_bound"), (5, 1, "sync")),
    "granian wsgi: blocking threads, no worker class": (
        (2, None, "flask", "wsgi", "granian", "io_bound"),
        (5, 64, None),
    ),
    "hypercorn wsgi mixed": ((1, None, "django", "wsgi", "hypercorn", "mixed"), (3, 32, None)),
    "asgi: two loops per cpu": ((2, None, "fastapi", "asgi", "uvicorn", "io_bound"), (4, 1, None)),
    "asgi 0.5 cpu: one loop": ((0.5, None, "fastapi", "asgi", "uvicorn", "io_bound"), (1, 1, None)),
    "asgi cpu-bound: one loop per cpu, rounded up": (
        (1.5, None, "litestar", "asgi", "granian", "cpu_bound"),
        (2, 1, None),
    ),
    "gunicorn asgi: uvicorn-worker": (
        (2, None, "django", "asgi", "gunicorn", "mixed"),
        (4, 1, "uvicorn_worker.UvicornWorker"),
    ),
    "huge machine: capped at MAX_WORKERS and MAX_THREADS": (
        (64, None, "flask", "wsgi", "gunicorn", "mixed"),
        (32, 64, "gthread"),
    ),
    "huge asgi machine: capped": ((96, None, "starlette", "asgi", "hypercorn", "io_bound"), (32, 1, None)),
    "huge memory changes nothing": ((2, 64 * 1024 * GIB, "flask", "wsgi", "gunicorn", "mixed"), (5, 64, "gthread")),
    # 320 MiB * 0.8 - 70 MiB (gunicorn's 40 and the metrics endpoint's 30) = 186 MiB fits 3 x 60 MiB
    # django workers of the 9 that 4 cores want; each keeps threads for all the requests in flight
    # (128, capped at 64).
    "memory caps workers, threads stay": ((4, 320 * MIB, "django", "wsgi", "gunicorn", "mixed"), (3, 64, "gthread")),
    # 240 MiB * 0.8 - 70 MiB = 122 MiB fits 2 x 60 MiB fastapi workers of the 8 that 4 cores want.
    "memory caps asgi workers": (
        (4, 240 * MIB, "fastapi", "asgi", "gunicorn", "io_bound"),
        (2, 1, "uvicorn_worker.UvicornWorker"),
    ),
    "tiny memory: one worker, flagged": ((1, 64 * MIB, "django", "wsgi", "gunicorn", "mixed"), (1, 32, "gthread")),
}


@pytest.mark.parametrize(("inputs", "expected"), PLANS.values(), ids=PLANS.keys())
def test_plan(inputs: tuple, expected: tuple) -> None:
    plan = planned(*inputs)
    assert (plan.workers, plan.threads, plan.worker_class) == expected
    assert set(plan.reasons) == {"workers", "threads", "worker_class"}
    assert all(reason.strip() for reason in plan.reasons.values())


def test_plan_says_why_in_numbers() -> None:
    plan = planned(4, 320 * MIB, "django", "wsgi", "gunicorn", "mixed")
    assert plan.reasons["workers"].startswith("3: memory-capped from 9")
    assert plan.reasons["threads"].startswith("64 per worker (capped from 128): 32 requests in flight per CPU")


def test_memory_too_small_for_one_worker_is_flagged_not_zero() -> None:
    plan = planned(1, 64 * MIB, "django", "wsgi", "gunicorn", "mixed")
    assert plan.workers == 1 and not plan.fits_memory
    assert "expect OOM kills" in plan.reasons["workers"]


@pytest.mark.parametrize("cpus", [0.01, 0.1, 0.25, 0.5, 0.75, 1, 1.25, 3.3, 7, 12, 1024])
@pytest.mark.parametrize("workload", tuning.WORKLOADS)
@pytest.mark.parametrize("interface", tuning.INTERFACES)
def test_every_plan_has_at_least_one_worker_and_respects_the_ceilings(
    cpus: float, workload: str, interface: str
) -> None:
    plan = planned(cpus, None, "django", interface, "granian", workload)
    assert 1 <= plan.workers <= tuning.MAX_WORKERS
    assert 1 <= plan.threads <= tuning.MAX_THREADS
    assert plan.workers >= min(math.ceil(cpus), tuning.MAX_WORKERS)


@pytest.mark.parametrize(("name", "value"), [("interface", "rsgi"), ("workload", "bursty")])
def test_plan_refuses_unknown_names(name: str, value: str) -> None:
    inputs = {"framework": "flask", "interface": "wsgi", "server": "gunicorn", "workload": "mixed", name: value}
    with pytest.raises(values.TuningError, match=f"^{name}: '{value}' is not known; choose one of "):
        tuning.plan(1, None, **inputs, **FIGURES)


ANSWER = "stack.toml (the answer at generation)"

# environment -> workers, threads, worker class, where the cpus and memory came from
OVERRIDES = {
    "answers only": ({}, (3, 32, "gthread"), (ANSWER, ANSWER)),
    "CPU_LIMIT from the orchestrator": ({"CPU_LIMIT": "2"}, (5, 64, "gthread"), ("CPU_LIMIT", ANSWER)),
    "CPU_LIMIT in millicores": ({"CPU_LIMIT": "500m"}, (2, 16, "gthread"), ("CPU_LIMIT", ANSWER)),
    # 200 MiB * 0.8 - 40 = 120 MiB fits 2 x 50 MiB flask workers; each still has threads for all 32 in flight.
    "MEMORY_LIMIT caps": ({"MEMORY_LIMIT": "200MiB"}, (2, 32, "gthread"), (ANSWER, "MEMORY_LIMIT")),
    "WORKER_MEMORY for a heavier app": ({"WORKER_MEMORY": "200MiB"}, (1, 32, "gthread"), (ANSWER, ANSWER)),
    "WEB_CONCURRENCY wins": (
        {"WEB_CONCURRENCY": "9", "CPU_LIMIT": "2"},
        (9, 64, "gthread"),
        ("CPU_LIMIT", ANSWER),
    ),
    "WEB_THREADS wins": ({"WEB_THREADS": "16"}, (3, 16, "gthread"), (ANSWER, ANSWER)),
    "blank variables are unset": (
        {"WEB_CONCURRENCY": " ", "CPU_LIMIT": ""},
        (3, 32, "gthread"),
        (ANSWER, ANSWER),
    ),
}


@pytest.mark.parametrize(("env", "expected", "sources"), OVERRIDES.values(), ids=OVERRIDES.keys())
def test_environment_overrides(env: dict[str, str], expected: tuple, sources: tuple) -> None:
    plan = plan_inputs.plan_from_environment(env, STACK)
    assert (plan.workers, plan.threads, plan.worker_class) == expected
    assert (plan.limits["cpus"]["from"], plan.limits["memory"]["from"]) == sources


NODE_CPUS = Found("cpus", 64, "the process's CPU affinity (sched_getaffinity)", "ceiling")


def quota(cpus: float) -> Found:
    return Found("cpus", cpus, "cgroup v2 cpu.max in /sys/fs/cgroup", "quota")


def downward_api(limit_millicores: int, request_millicores: int) -> dict[str, str]:
    """What the Deployment's env gets: limits.cpu and requests.cpu with divisor 1m. A container with no
    limit gets the node's allocatable CPU as its limit; with no request, 0 (or the limit, when one is set)."""
    return {"CPU_LIMIT_MILLICORES": str(limit_millicores), "CPU_REQUEST_MILLICORES": str(request_millicores)}


# On a 64-CPU node: (environment, cgroup quotas) -> the CPUs planned on, and where from.
CPU_SOURCES = {
    "limit 2 (the request defaults to it)": (downward_api(2000, 2000), [quota(2)], (2, "cgroup v2 cpu.max")),
    "request 1, no limit: the node's 64 reported as the limit": (
        downward_api(64000, 1000),
        [],
        (1, "CPU_REQUEST_MILLICORES"),
    ),
    "request 1 and limit 2: the limit": (downward_api(2000, 1000), [quota(2)], (2, "cgroup v2 cpu.max")),
    "neither: the answer, not the node": (downward_api(64000, 0), [], (1, ANSWER)),
    "a quota of 0.5 smaller than both": (downward_api(2000, 1000), [quota(0.5)], (0.5, "cgroup v2 cpu.max")),
    "request 1.5 alone, no Downward API limit": (
        {"CPU_REQUEST_MILLICORES": "1500"},
        [],
        (1.5, "CPU_REQUEST_MILLICORES"),
    ),
    "CPU_LIMIT set by hand counts without a quota": (
        {"CPU_LIMIT": "2", **downward_api(64000, 1000)},
        [],
        (2, "CPU_LIMIT"),
    ),
    "request 96 past the node's 64: the ceiling": (downward_api(96000, 96000), [], (64, "the process's CPU affinity")),
}


@pytest.mark.parametrize(("env", "quotas", "expected"), CPU_SOURCES.values(), ids=CPU_SOURCES.keys())
def test_the_cpus_planned_on_come_from_the_limit_else_the_request_else_the_answer(
    env: dict[str, str], quotas: list[Found], expected: tuple[float, str]
) -> None:
    plan = plan_inputs.plan_from_environment(env, STACK, [*quotas, NODE_CPUS])
    cpus, source = expected
    assert plan.cpus == cpus and plan.limits["cpus"]["from"].startswith(source), plan.limits["cpus"]
    # The Downward API's limit without a quota is the node's CPU: the plan line says it set it aside.
    unbacked = "CPU_LIMIT_MILLICORES" in env and not quotas
    assert ("CPU_LIMIT_MILLICORES" in plan.limits["cpus"].get("ignored", {})) == unbacked


def test_web_threads_turn_sync_workers_into_gthread() -> None:
    plan = plan_inputs.plan_from_environment({"WEB_THREADS": "4"}, {**STACK, "workload": "cpu_bound"})
    assert (plan.threads, plan.worker_class) == (4, "gthread")


def test_web_concurrency_past_the_memory_limit_warns() -> None:
    plan = plan_inputs.plan_from_environment({"WEB_CONCURRENCY": "40"}, STACK)
    assert plan.workers == 40
    assert plan.reasons["workers"].endswith("expect OOM kills")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WEB_CONCURRENCY": "0"}, "WEB_CONCURRENCY: '0' is not a whole number >= 1"),
        ({"WEB_CONCURRENCY": "four"}, "WEB_CONCURRENCY: 'four' is not a whole number >= 1"),
        ({"WEB_THREADS": "-2"}, "WEB_THREADS: '-2' is not a whole number >= 1"),
        ({"CPU_LIMIT": "max"}, "CPU_LIMIT: 'max' is not a number"),
        ({"CPU_LIMIT_MILLICORES": "0.5"}, "CPU_LIMIT_MILLICORES: '0.5' is not a whole number >= 1"),
        ({"CPU_REQUEST_MILLICORES": "-1"}, "CPU_REQUEST_MILLICORES: '-1' is not a whole number >= 0"),
        ({"MEMORY_LIMIT": "big"}, "MEMORY_LIMIT: 'big' is not a memory size"),
        ({"WORKER_MEMORY": "0"}, "WORKER_MEMORY: '0' is not more than 0"),
    ],
)
def test_bad_environment_values_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(values.TuningError) as caught:
        plan_inputs.plan_from_environment(env, STACK)
    assert str(caught.value).startswith(message)


def test_plan_json_has_what_operators_read() -> None:
    import json

    plan = json.loads(plan_inputs.plan_from_environment({}, STACK).as_json())
    assert {"cpus", "memory_limit_bytes", "workers", "threads", "reasons", "limits"} <= set(plan)
    assert plan["memory_limit_bytes"] == 512 * MIB


def test_describe_shows_each_number() -> None:
    text = presentation.describe(planned(1, 512 * MIB, "flask", "wsgi", "gunicorn", "io_bound"))
    assert "workers x threads: 3 x 64" in text
    assert "1 CPU, 512 MiB" in text


# The database budget: (cpus, framework, interface, server, workload), (budget, replicas) ->
# workers, threads, each worker's pool. (replicas + a deploy's new one) x workers x pool stays within the budget.
DATABASE_PLANS = {
    "wsgi io: 90 less the release step's 2 over 2 replicas (1 and a deploy's) x 3 workers, 14 each; the threads stay": (
        (1, "flask", "wsgi", "gunicorn", "io_bound"),
        (90, 1),
        (3, 64, 14),
    ),
    "wsgi io: a large budget leaves the threads alone, and a thread needs one connection": (
        (1, "flask", "wsgi", "gunicorn", "io_bound"),
        (1000, 1),
        (3, 64, 64),
    ),
    "wsgi io at 10 replicas: 8 a container, 2 a worker": (
        (1, "django", "wsgi", "gunicorn", "io_bound"),
        (90, 10),
        (3, 64, 2),
    ),
    "wsgi cpu-bound: one thread, one connection": ((1, "flask", "wsgi", "gunicorn", "cpu_bound"), (90, 1), (2, 1, 1)),
    "wsgi: the remainder of an uneven split stays unused": (
        (1, "flask", "wsgi", "granian", "mixed"),
        (22, 1),
        (3, 32, 3),
    ),
    "asgi: 88 over 2 replicas x 2 event loops, 22 each": (
        (1, "fastapi", "asgi", "uvicorn", "io_bound"),
        (90, 1),
        (2, 1, 22),
    ),
    "asgi: an event loop takes at most 64 without a reason for more": (
        (1, "fastapi", "asgi", "uvicorn", "io_bound"),
        (1000, 1),
        (2, 1, 64),
    ),
    "asgi at 10 replicas": ((2, "starlette", "asgi", "hypercorn", "io_bound"), (90, 10), (4, 1, 2)),
    "exactly one connection a worker fits": ((1, "flask", "wsgi", "gunicorn", "io_bound"), (35, 10), (3, 64, 1)),
    "no budget: a connection for each request in flight (wsgi)": (
        (1, "flask", "wsgi", "gunicorn", "io_bound"),
        (None, 10),
        (3, 64, 64),
    ),
    "no budget: an event loop's pool as large as a threaded worker's": (
        (1, "quart", "asgi", "granian", "io_bound"),
        (None, 1),
        (2, 1, 64),
    ),
}


@pytest.mark.parametrize(("inputs", "budget", "expected"), DATABASE_PLANS.values(), ids=DATABASE_PLANS.keys())
def test_database_plan(inputs: tuple, budget: tuple, expected: tuple) -> None:
    cpus, framework, interface, server, workload = inputs
    database = tuning.Database(*budget)
    plan = planned(cpus, None, framework, interface, server, workload, database=database)
    assert (plan.workers, plan.threads, plan.db_pool_size) == expected
    assert plan.db_connections_per_container == plan.workers * plan.db_pool_size
    if database.max_connections is not None:
        assert plan.db_connections_during_deploy <= database.max_connections
    assert plan.reasons["database"].strip()


def test_database_plan_says_why_in_numbers() -> None:
    plan = planned(1, None, "flask", "wsgi", "gunicorn", "io_bound", database=tuning.Database(90, 10))
    assert plan.reasons["database"] == (
        "2 connections per worker: 90 less the release step's 2 over 11 replicas (10 and a deploy's 1 more)"
        " x 3 workers (6 per container, 66 at 11 replicas (10 and a deploy's 1 more)): requests past the pool"
        " wait for a connection"
    )
    assert plan.reasons["threads"].startswith("64 per worker: 64 requests in flight per CPU")
    assert "database 2 connections per worker" in presentation.describe(plan)


def test_a_budget_below_one_connection_a_worker_is_refused_naming_what_fits() -> None:
    with pytest.raises(values.TuningError) as caught:
        planned(4, None, "fastapi", "asgi", "uvicorn", "io_bound", database=tuning.Database(90, 20))
    assert str(caught.value) == (
        "db_max_connections: '90' leaves 4 connections per container for 8 workers at 21 replicas (20 and a"
        " deploy's 1 more) once the release step has its 2; give at least 170 (one a worker, and the step's),"
        " or fewer replicas or CPUs"
    )


def test_no_database_no_pool() -> None:
    plan = planned(1, None, "flask", "wsgi", "gunicorn", "io_bound")
    assert (plan.db_pool_size, plan.db_connections_per_container, plan.max_replicas) == (None, None, None)
    assert "database" not in plan.reasons


DATABASE_STACK = {
    **STACK,
    "workload": "io_bound",
    "database": "postgres",
    "db_max_connections": "90",
    "max_replicas": "1",
}

# environment -> workers, threads, pool, what a refusal would name
DATABASE_OVERRIDES = {
    "the answers": ({}, (3, 64, 14)),
    "DB_MAX_CONNECTIONS from the orchestrator": ({"DB_MAX_CONNECTIONS": "32"}, (3, 64, 5)),
    "MAX_REPLICAS: compose --scale 3": ({"MAX_REPLICAS": "3"}, (3, 64, 7)),
    "DB_MAX_CONNECTIONS=none: no budget (a pooler in front)": ({"DB_MAX_CONNECTIONS": "none"}, (3, 64, 64)),
    "WEB_CONCURRENCY first, then the split": ({"WEB_CONCURRENCY": "8"}, (8, 64, 5)),
    "WEB_THREADS past the pool: they wait for a connection": ({"WEB_THREADS": "40"}, (3, 40, 14)),
}


@pytest.mark.parametrize(("env", "expected"), DATABASE_OVERRIDES.values(), ids=DATABASE_OVERRIDES.keys())
def test_database_environment_overrides(env: dict[str, str], expected: tuple) -> None:
    plan = plan_inputs.plan_from_environment(env, DATABASE_STACK)
    assert (plan.workers, plan.threads, plan.db_pool_size) == expected


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DB_MAX_CONNECTIONS": "4"}, "DB_MAX_CONNECTIONS: '4' leaves 1 connection per container for 3 workers"),
        ({"DB_MAX_CONNECTIONS": "lots"}, "DB_MAX_CONNECTIONS: 'lots' is not a whole number >= 1"),
        ({"MAX_REPLICAS": "0"}, "MAX_REPLICAS: '0' is not a whole number from 1 to 1000"),
        ({"MAX_REPLICAS": "100"}, "db_max_connections: '90' leaves 0 connections per container for 3 workers"),
    ],
)
def test_database_budgets_that_cannot_work_name_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(values.TuningError) as caught:
        plan_inputs.plan_from_environment(env, DATABASE_STACK)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize("text", ["¹", "٣x", "1²", "-3", "3.0", ""])
def test_counts_are_ascii_whole_numbers(text: str) -> None:
    """str.isdigit() takes superscripts, which int() refuses: a traceback found by random answers."""
    for parse in (values.parse_replicas, values.parse_connections):
        with pytest.raises(values.TuningError, match="is not a whole number"):
            parse(text)
    with pytest.raises(values.TuningError, match="^WEB_CONCURRENCY: "):
        plan_inputs.plan_from_environment({"WEB_CONCURRENCY": text or "0"}, STACK)


ASGI_STACK = {
    **STACK,
    "framework": "fastapi",
    "interface": "asgi",
    "server": "granian",
    "workload": "io_bound",
    "worker_memory_mib": "60",
    "server_memory_mib": "35",
    # deploy/stack.toml's [connections], as an ASGI project is generated
    "connections_expected": str(tuning.DEFAULT_LONG_LIVED_CONNECTIONS),
    "connections_memory_kib": "175",
}

# environment -> long-lived connections, workers, open files a worker, memory planned (MiB)
# 512 MiB * 0.8 - 35 MiB (granian) leaves 374.6 MiB: 6 fastapi workers at 60 MiB without connections;
# 1000 connections at 175 KiB are 171 MiB of it, which leaves room for 3; 1500 leave room for 1.
LONG_LIVED_OVERRIDES = {
    "the project's expectation": ({}, (1000, 2, 2024, 35 + 171 + 2 * 60)),
    "WS_CONNECTIONS=0: no WebSockets": ({"WS_CONNECTIONS": "0"}, (0, 2, 1024, 35 + 2 * 60)),
    "more connections, fewer workers fit": (
        {"WS_CONNECTIONS": "1500", "CPU_LIMIT": "2"},
        (1500, 1, 2524, 35 + 256 + 60),
    ),
    "fewer connections, every worker fits": (
        {"WS_CONNECTIONS": "100", "CPU_LIMIT": "2"},
        (100, 4, 1124, 35 + 17 + 4 * 60),
    ),
}


@pytest.mark.parametrize(("env", "expected"), LONG_LIVED_OVERRIDES.values(), ids=LONG_LIVED_OVERRIDES.keys())
def test_long_lived_connections_take_memory_and_open_files(env: dict[str, str], expected: tuple) -> None:
    plan = plan_inputs.plan_from_environment(env, ASGI_STACK)
    memory_mib = round(plan.memory_needed_bytes / MIB)
    assert (plan.long_lived_connections, plan.workers, plan.open_files_per_worker, memory_mib) == expected


def test_long_lived_connections_say_why_in_numbers() -> None:
    plan = plan_inputs.plan_from_environment({"CPU_LIMIT": "2"}, ASGI_STACK)
    assert plan.reasons["connections"].startswith("1000 WebSockets and event streams at once (WS_CONNECTIONS)")
    assert "171 MiB (175 KiB each in granian)" in plan.reasons["connections"]
    assert plan.reasons["workers"].startswith("3: memory-capped from 4")
    assert "open     1000 WebSockets" in presentation.describe(plan)


def test_a_wsgi_stack_plans_no_long_lived_connections() -> None:
    plan = plan_inputs.plan_from_environment({}, STACK)
    assert (plan.long_lived_connections, plan.open_files_per_worker) == (0, tuning.BASE_OPEN_FILES)
    assert "connections" not in plan.reasons


@pytest.mark.parametrize(
    ("env", "stack", "message"),
    [
        ({"WS_CONNECTIONS": "many"}, ASGI_STACK, "WS_CONNECTIONS: 'many' is not a whole number from 0 to 1000000"),
        ({"WS_CONNECTIONS": "-1"}, ASGI_STACK, "WS_CONNECTIONS: '-1' is not a whole number from 0 to 1000000"),
        ({"WS_CONNECTIONS": "1000001"}, ASGI_STACK, "WS_CONNECTIONS: '1000001' is not a whole number from 0"),
        ({"WS_CONNECTIONS": "10"}, STACK, "WS_CONNECTIONS: '10' is more than 0 on a WSGI stack"),
    ],
    ids=["words", "negative", "too-many", "wsgi"],
)
def test_long_lived_connections_that_cannot_work_name_the_setting(
    env: dict[str, str], stack: dict[str, str], message: str
) -> None:
    with pytest.raises(values.TuningError) as caught:
        plan_inputs.plan_from_environment(env, stack)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize("websockets", [0, 1, 1000, 250_000])
def test_an_nginx_worker_holds_both_ends_of_every_websocket_beside_its_usual_connections(websockets: int) -> None:
    assert nginx_sizing.nginx_worker_connections(websockets) - 2 * websockets >= 4096
