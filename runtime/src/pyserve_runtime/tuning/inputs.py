"""The plan's inputs, chosen: the limits found (the cgroup, the environment, the answers in
deploy/stack.toml), the WebSockets expected and the database budget, handed to the model (model.py).

settings.py reads the environment's overrides; machine.py reads the system's limits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from ..settings import PlanOverrides, plan_overrides
from ..values import MIB, parse_connections, parse_cpus, parse_memory, parse_replicas
from .model import Database, Found, Plan, plan

# Kubernetes' Downward API gives the node's allocatable CPU as limits.cpu when the container sets no
# limit (https://kubernetes.io/docs/concepts/workloads/pods/downward-api/#fallback-information-for-resource-limits);
# only the cgroup quota, which every CPU limit becomes, tells a real limit from that.
UNBACKED_LIMIT = "not a limit: no cgroup CPU quota backs it (with no limit set, the Downward API gives the node's CPU)"


def counted_limits(mine: list[Found]) -> list[Found]:
    """The limits set for this container: a quota, CPU_LIMIT or MEMORY_LIMIT, and the Downward API's
    limits.cpu where a quota shows that a limit was set."""
    has_quota = any(item.kind == "quota" for item in mine)
    return [item for item in mine if item.kind in ("quota", "limit") or (item.kind == "reported" and has_quota)]


def choose_limit(resource: str, found: list[Found], answer: Found | None) -> tuple[float | None, str]:
    """The limit the plan uses, and where from: the smallest limit set for this container; else the
    CPU it requests (a pod with a request and no limit, as many platforms run them); else the
    generation-time answer (a laptop, a VM, a pod with neither), since nothing else says how much of
    the machine the service should plan on; never more than a ceiling.
    """
    mine = [item for item in found if item.resource == resource]
    requests = [item for item in mine if item.kind == "request"]
    candidates = counted_limits(mine) or requests or ([answer] if answer else [])
    ceilings = [item for item in mine if item.kind == "ceiling"]
    chosen = min(candidates, key=lambda item: item.value, default=None)
    ceiling = min(ceilings, key=lambda item: item.value, default=None)
    if ceiling is not None and (chosen is None or ceiling.value < chosen.value):
        chosen = ceiling
    return (chosen.value, chosen.source) if chosen else (None, "none")


def long_lived(overrides: PlanOverrides, stack: Mapping[str, str]) -> int:
    """WS_CONNECTIONS, else the project's expectation (deploy/stack.toml [connections]; 0 on WSGI)."""
    if overrides.long_lived_connections is not None:
        return overrides.long_lived_connections
    return int(stack.get("connections_expected", "0"))


def long_lived_from_environment(env: Mapping[str, str], stack: Mapping[str, str]) -> int:
    return long_lived(plan_overrides(env, with_database=False), stack)


def database_budget(overrides: PlanOverrides, stack: Mapping[str, str]) -> Database | None:
    """The service's database budget: DB_MAX_CONNECTIONS and MAX_REPLICAS, else the answers (stack)."""
    if stack.get("database", "none") == "none":
        return None
    if overrides.db_max_connections is None:
        named, budget = "db_max_connections", parse_connections(stack["db_max_connections"])
    else:
        named = "DB_MAX_CONNECTIONS"
        budget = None if overrides.db_max_connections == "none" else overrides.db_max_connections
    replicas = overrides.max_replicas
    return Database(budget, parse_replicas(stack["max_replicas"]) if replicas is None else replicas, named)


def limits_found(overrides: PlanOverrides) -> list[Found]:
    """CPU_LIMIT (or CPU_LIMIT_MILLICORES), CPU_REQUEST_MILLICORES and MEMORY_LIMIT: what an orchestrator passes in."""
    given = [
        ("cpus", overrides.cpu_limit, "CPU_LIMIT", "limit"),
        ("cpus", overrides.cpu_limit_millicores, "CPU_LIMIT_MILLICORES", "reported"),
        ("cpus", overrides.cpu_request_millicores, "CPU_REQUEST_MILLICORES", "request"),
        ("memory", overrides.memory_limit_bytes, "MEMORY_LIMIT", "limit"),
    ]
    return [Found(resource, value, source, kind) for resource, value, source, kind in given if value is not None]


def plan_from_environment(
    env: Mapping[str, str], stack: Mapping[str, str], system: list[Found] | tuple[Found, ...] = ()
) -> Plan:
    """The plan from the answers and memory figures (stack), the environment and the limits read from the system."""
    overrides = plan_overrides(env, with_database=stack.get("database", "none") != "none")
    return plan_from(overrides, stack, system)


def plan_from(overrides: PlanOverrides, stack: Mapping[str, str], system: list[Found] | tuple[Found, ...] = ()) -> Plan:
    """The plan from the answers and memory figures (stack), the environment's overrides and the limits
    read from the system."""
    found = [*system, *limits_found(overrides)]
    cpu_answer = Found("cpus", parse_cpus(stack["cpu_limit"]), "stack.toml (the answer at generation)")
    memory_answer = (
        Found("memory", parse_memory(stack["memory_limit"]), "stack.toml (the answer at generation)")
        if stack.get("memory_limit")
        else None
    )
    cpus, cpus_from = choose_limit("cpus", found, cpu_answer)
    memory, memory_from = choose_limit("memory", found, memory_answer)
    found_by_resource: dict[str, dict[str, float]] = {
        "cpus": {item.source: item.value for item in found if item.resource == "cpus"},
        "memory": {item.source: int(item.value) for item in found if item.resource == "memory"},
    }
    for resource, answer in (("cpus", cpu_answer), ("memory", memory_answer)):
        if answer is not None:
            found_by_resource[resource].setdefault(answer.source, answer.value)
    limits: dict[str, dict[str, Any]] = {
        "cpus": {"from": cpus_from, "found": found_by_resource["cpus"]},
        "memory": {"from": memory_from, "found": found_by_resource["memory"]},
    }
    cpus_found = [item for item in found if item.resource == "cpus"]
    counted = counted_limits(cpus_found)
    unbacked = [item.source for item in cpus_found if item.kind == "reported" and item not in counted]
    if unbacked:
        limits["cpus"]["ignored"] = dict.fromkeys(unbacked, UNBACKED_LIMIT)
    worker_memory = overrides.worker_memory_bytes or int(stack["worker_memory_mib"]) * MIB
    result = plan(
        float(cpus or cpu_answer.value),
        int(memory) if memory else None,
        stack["framework"],
        stack["interface"],
        stack["server"],
        stack["workload"],
        worker_memory_bytes=worker_memory,
        server_memory_bytes=int(stack["server_memory_mib"]) * MIB,
        workers_override=overrides.workers,
        threads_override=overrides.threads,
        database=database_budget(overrides, stack),
        long_lived_connections=long_lived(overrides, stack),
        connection_memory_bytes=int(stack.get("connections_memory_kib", "0")) * 1024,
    )
    return Plan(**{**asdict(result), "limits": limits})
