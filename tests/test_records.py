"""A server or a framework is one folder plus its name in cookiecutter.json: every list that names
servers or frameworks (the menus, the compatibility table, the requirements, the memory figures, the
tests' matrices, the benchmark) has each one, and a record that is not offered fails here."""

from __future__ import annotations

import pytest

from pyserve_template import RUNTIME_PACKAGE, answers, compat, records, tuning, values
from pyserve_template.matrix import BENCH_STACKS, ONE_PER_SERVER, PRODUCT, STATIC_VARIATIONS

from .conftest import COOKIECUTTER_JSON, SERVER_VARIATIONS, TEMPLATE_ROOT, context
from .test_cgroups import CONFINED
from .test_containers import PODMAN_STACKS, STACKS
from .test_kubernetes import CASES as KUBERNETES_CASES

README = (TEMPLATE_ROOT / "README.md").read_text(encoding="utf-8")
LIMITS_PAGE = (TEMPLATE_ROOT / "docs" / "limits.md").read_text(encoding="utf-8")


def servers_of(cases: list[dict[str, str]]) -> set[str]:
    """The servers a list of variations of the baseline ends up on, `auto` resolved."""
    return {answers.resolve({"project_slug": "my_service", **context(**case)}).server for case in cases}


def test_every_offered_server_and_framework_has_a_record_and_every_record_is_offered() -> None:
    assert list(records.SERVERS) == records.offered("server")
    assert list(records.FRAMEWORKS) == records.offered("framework")
    prompts = COOKIECUTTER_JSON["__prompts__"]
    assert set(prompts["server"]) - {"__prompt__", "auto"} == set(records.SERVERS)
    assert set(prompts["framework"]) - {"__prompt__"} == set(records.FRAMEWORKS)


@pytest.mark.parametrize("name", records.SERVERS)
def test_a_server_record_is_complete(name: str) -> None:
    server = records.SERVERS[name]
    assert server.interfaces and set(server.interfaces) <= set(compat.INTERFACES)
    assert server.memory_mib > 0 and server.engine_restart_s > 0
    assert (RUNTIME_PACKAGE / "servers" / name / "command.py").is_file(), "pyserve serve runs its command.argv()"
    for interface in server.interfaces:
        assert server.requirements_for(interface), f"{name} installs nothing for {interface}"
    assert set(server.recycles_on) <= set(server.interfaces) and set(server.request_timeout) <= set(server.interfaces)
    assert not server.recycles_on or server.recycling, "say how its workers are recycled"
    assert set(server.faults) <= set(compat.FAULT_NAMES)
    tested = records.FRAMEWORKS[server.tested_with]
    assert compat.supports(tested.name, tested.interfaces[0], name), "its tested stack must work"


@pytest.mark.parametrize("name", records.FRAMEWORKS)
def test_a_framework_record_is_complete(name: str) -> None:
    framework = records.FRAMEWORKS[name]
    assert framework.interfaces and set(framework.interfaces) <= set(compat.INTERFACES)
    assert framework.memory_mib > 0 and framework.requirements_for("nginx", framework.interfaces[0])
    assert framework.files, "its sample app"
    module = framework.app_module("my_service", framework.interfaces[0]).partition(":")[0]
    assert f"{module.removeprefix('my_service.')}.py" in framework.files


@pytest.mark.parametrize(
    ("measured", "figure"), [(26.4, 30), (40.5, 45), (41.2, 50), (45.4, 50), (50.0, 55), (50.1, 60)], ids=str
)
def test_a_memory_figure_is_at_least_ten_percent_above_the_measurement_in_steps_of_five(
    measured: float, figure: int
) -> None:
    assert records.memory_figure_mib(measured) == figure


def test_every_matrix_has_every_server_and_framework() -> None:
    every_server, every_framework = set(records.SERVERS), set(records.FRAMEWORKS)
    assert set(compat.SERVER_INTERFACES) == every_server and set(compat.FRAMEWORK_INTERFACES) == every_framework
    assert {stack["server"] for stack in PRODUCT} == every_server
    assert {stack["framework"] for stack in PRODUCT} == every_framework
    assert set(ONE_PER_SERVER) == set(SERVER_VARIATIONS) == set(CONFINED) == every_server
    assert servers_of([*STACKS, {}]) == every_server, "test_containers: each server's images, once"
    assert servers_of(KUBERNETES_CASES) == every_server
    assert servers_of(PODMAN_STACKS) <= every_server and servers_of(STATIC_VARIATIONS) <= every_server
    # The benchmark measures every server, among them those `auto` picks.
    assert {stack.server for stack in BENCH_STACKS} == every_server


def test_the_template_docs_have_every_server_and_framework() -> None:
    assert compat.matrix_markdown() in README
    for name in [*records.SERVERS, *records.FRAMEWORKS]:
        assert f"| {name} |" in LIMITS_PAGE, f"{name} is missing from docs/limits.md's memory tables"


@pytest.mark.parametrize("framework", records.FRAMEWORKS)
@pytest.mark.parametrize("server", records.SERVERS)
def test_minimum_memory_is_exactly_where_one_worker_fits(framework: str, server: str) -> None:
    """Each record's measured figures against the model: the least memory it asks for runs one worker."""
    figures = records.memory_figures(framework, server)
    least = tuning.minimum_memory_bytes(**figures)
    stack = (framework, "asgi", server, "io_bound")
    assert tuning.plan(1, least, *stack, **figures).fits_memory
    assert not tuning.plan(1, least - values.MIB, *stack, **figures).fits_memory
