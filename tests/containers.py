"""The container tests' harness: an engine per test module, and a project's compose stack on it,
driven by the project's own pyserve_runtime.container_test (its ComposeStack) and taken down afterwards."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from pyserve_template import runtime_of
from pyserve_template.baking import free_port

from .engine import Engine, docker_engine, engine_unavailable, podman_engine, project_images

CONTAINER_TEST_TIMEOUT = 900


def started_engine(kind: str) -> Iterator[Engine]:
    """One engine for a module's tests (stopped after them), or those tests skipped with the reason."""
    reason = engine_unavailable(kind)
    if reason:
        pytest.skip(reason)
    with {"docker": docker_engine, "podman": podman_engine}[kind]() as engine:
        yield engine


def load_container_test(project: Path) -> ModuleType:
    """The runtime's container_test.py as it runs in the project, its harness reused here."""
    return runtime_of(project, "container_test", f"deploy_{abs(hash(str(project)))}")


@contextlib.contextmanager
def compose_stack(
    project: Path, engine: Engine, name: str, *overrides: Path, images: tuple[str, ...] = ()
) -> Iterator[ModuleType]:
    """The project's own ComposeStack on `engine`, its images built; taken down afterwards, leaving nothing.
    `overrides`: compose files merged over compose.yaml, which may run `images` besides the project's."""
    engine.ensure_images([*project_images(project), *images])
    harness = load_container_test(project)
    # Named files replace compose's default pair (compose.yaml and a compose.override.yaml beside it).
    files = (
        [arg for path in (project / "compose.yaml", *overrides) for arg in ("--file", str(path))] if overrides else []
    )
    stack = harness.ComposeStack(["docker", "compose", *files], engine.cli, name, free_port(), engine.env)
    try:
        stack.run("build", timeout=CONTAINER_TEST_TIMEOUT)
        yield stack
    finally:
        stack.down(remove_images=True)
    assert stack.leftovers() == []


def dns_valid_seconds(project: Path) -> int:
    """How long nginx keeps a DNS answer (the resolver's valid= in the project's site template)."""
    template = (project / "deploy" / "nginx" / "templates" / "site.conf.template").read_text()
    return int(re.search(r"^\s*resolver \S+ valid=(\d+)s", template, re.MULTILINE).group(1))


def access_lines(nginx_log: str) -> list[dict]:
    """nginx's access lines in a container's log: JSON objects (LOG_FORMAT=json, the image's default)."""
    return [line for line in map(json.loads, filter(lambda text: text.startswith("{"), nginx_log.splitlines()))
            if line.get("logger") == "nginx.access"]  # fmt: skip


def upstream_that_answered(line: dict) -> str:
    """The address that answered (nginx lists each it tried, comma-separated: the last), without its port."""
    return line["upstream"].split(",")[-1].strip().rpartition(":")[0]


def run_workflow_steps(steps: list[str], project: Path, env: dict[str, str]) -> str:
    """A workflow's `run:` steps in order and as written, with the runner's shell flags; the last
    one's output. Each must exit 0."""
    output = ""
    for step in steps:
        result = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=CONTAINER_TEST_TIMEOUT,
        )
        output = result.stdout + result.stderr
        print(f"$ {step}\n{output[-3000:]}")
        assert result.returncode == 0, f"{step}:\n{output[-6000:]}"
    return output
