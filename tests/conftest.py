"""Shared pieces of the template's test suite: the baseline answers and one way to bake."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pytest

from pyserve_template.matrix import ONE_PER_SERVER

from .containers import started_engine

TEMPLATE_ROOT = Path(__file__).resolve().parent.parent
COOKIECUTTER_JSON = json.loads((TEMPLATE_ROOT / "cookiecutter.json").read_text())
ANSWER_KEYS = {key for key in COOKIECUTTER_JSON if not key.startswith("_")}

# The defaults, spelled out: every variation below is "the baseline, but ...".
BASELINE: dict[str, str] = {
    "project_name": "My Service",
    "framework": "fastapi",
    "interface": "auto",
    "server": "auto",
    "workload": "io_bound",
    "cpu_limit": "1",
    "memory_limit": "512MiB",
    "static_strategy": "nginx",
    "python_version": "3.13",
    "use_kubernetes": "no",
    "database": "none",
}


# One stack per server for the fault tests on the host and in containers; 2 CPUs, so that a server
# runs more than one worker where its plan says so.
SERVER_VARIATIONS: dict[str, dict[str, str]] = {
    server: {**stack, "cpu_limit": "2"} for server, stack in ONE_PER_SERVER.items()
}


def context(**changes: str) -> dict[str, str]:
    """The baseline with a few answers changed; refuses keys cookiecutter would silently ignore."""
    unknown = set(changes) - ANSWER_KEYS
    assert not unknown, f"not in cookiecutter.json (a typo would quietly test the defaults): {unknown}"
    return {**BASELINE, **changes}


def variation_id(changes: Mapping[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in changes.items()) or "baseline"


def bake_with(cookies, changes: Mapping[str, str]) -> Path:
    result = cookies.bake(extra_context=context(**changes))
    assert result.exit_code == 0, result.exception
    assert result.exception is None
    return result.project_path


class BakedOnce:
    """Each variation baked once, the files each bake held when it was made."""

    def __init__(self, cookies_session) -> None:
        self.cookies = cookies_session
        self.baked: dict[tuple[tuple[str, str], ...], tuple[Path, set[Path]]] = {}

    def __call__(self, **changes: str) -> Path:
        key = tuple(sorted(changes.items()))
        if key not in self.baked:
            project = bake_with(self.cookies, changes)
            self.baked[key] = (project, set(project.rglob("*")))
        return self.baked[key][0]

    def added_since(self) -> dict[str, list[str]]:
        added = {}
        for project, files in self.baked.values():
            if new := set(project.rglob("*")) - files:
                added[project.name] = sorted(str(path.relative_to(project)) for path in new)[:5]
        return added


@pytest.fixture(scope="session")
def bake(cookies_session):
    """Bake the baseline with some answers changed, once per session: tests only read the result,
    whichever order they run in (a file one of them left would show up in the next one's checks)."""
    baked = BakedOnce(cookies_session)
    yield baked
    assert not baked.added_since(), f"tests wrote into projects that others read as baked: {baked.added_since()}"


@pytest.fixture(scope="session")
def bake_to_run(cookies_session):
    """The same, for tests that start what they bake: a running stack leaves files in its project
    (collected static files, `.local/`), which the tests that read `bake`'s must never see."""
    return BakedOnce(cookies_session)


@pytest.fixture
def fresh_bake(cookies):
    """A project of its own, for tests that run code inside it."""
    return lambda **changes: bake_with(cookies, changes)


@pytest.fixture(scope="module")
def docker():
    """A Docker engine the tests start, shared by one module's tests (tests/engine.py)."""
    yield from started_engine("docker")


@pytest.fixture(scope="module")
def podman():
    """podman's Docker-compatible API service, shared by one module's tests (tests/engine.py)."""
    yield from started_engine("podman")


# The suite's lanes when it runs on several workers (`-n 2`, pytest-xdist): each group's modules run
# on one worker, one test after another, as they share a thing of which the machine has one: the
# engines' cached data root, the cgroup tree (the real-cgroup runs, `make tune`, the benchmark), or a
# module's running stacks. Every other test goes to whichever worker is free. (xdist's own
# `xdist_group` mark renames node ids, which pytest 9 no longer lets it do.)
LANES = {
    "test_containers.py": "engines",
    "test_container_faults.py": "engines",
    "test_pod.py": "engines",
    "test_tls.py": "engines",
    "test_deploy.py": "engines",
    "test_releases.py": "engines",
    "test_cgroups.py": "cgroups",
    "test_bench.py": "cgroups",
    "test_tune.py": "cgroups",
    "test_autoscaling.py": "cgroups",
    "test_database.py": "database",
    "test_long_lived.py": "long_lived",
    "test_observability.py": "observability",
}


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    from xdist.scheduler import LoadGroupScheduling

    class LaneScheduling(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.partition("::")[0].rpartition("/")[2]
            return LANES.get(module, nodeid)

    return LaneScheduling(config, log)
