"""Shared pieces of the template's test suite: the baseline answers and one way to bake."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

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
}


# Each static strategy on WSGI and ASGI, Django and not: with the 26 stacks (static=nginx), what the
# validators and the end-to-end tests run.
STATIC_VARIATIONS: list[dict[str, str]] = [
    {"static_strategy": "whitenoise", "framework": "flask"},
    {"static_strategy": "whitenoise"},
    {"static_strategy": "whitenoise", "framework": "django"},
    {"static_strategy": "whitenoise", "framework": "django", "interface": "asgi"},
    {"static_strategy": "cdn"},
    {"static_strategy": "cdn", "framework": "django"},
    {"static_strategy": "none"},
    {"static_strategy": "none", "framework": "django"},
]

# One stack per server, for the fault tests on the host and in containers; 2 CPUs, so that a server
# runs more than one worker where its plan says so.
SERVER_VARIATIONS: dict[str, dict[str, str]] = {
    "gunicorn": {"framework": "flask", "cpu_limit": "2"},  # WSGI, gthread workers
    "uvicorn": {"framework": "fastapi", "cpu_limit": "2"},
    "hypercorn": {"framework": "quart", "server": "hypercorn", "cpu_limit": "2"},
    "granian": {"framework": "starlette", "server": "granian", "cpu_limit": "2"},
}


def context(**changes: str) -> dict[str, str]:
    """The baseline with a few answers changed; refuses keys cookiecutter would silently ignore."""
    unknown = set(changes) - ANSWER_KEYS
    assert not unknown, f"not in cookiecutter.json (a typo would quietly test the defaults): {unknown}"
    return {**BASELINE, **changes}


def variation_id(changes: Mapping[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in changes.items()) or "baseline"


@dataclass
class CookiecutterRun:
    result: subprocess.CompletedProcess[str]
    output_dir: Path
    replay_dir: Path
    temp_dir: Path  # the run's TMPDIR, where cookiecutter writes each hook before running it

    @property
    def left_in_temp(self) -> list[Path]:
        return list(self.temp_dir.iterdir())

    @property
    def left_behind(self) -> list[Path]:
        return list(self.output_dir.iterdir()) + self.left_in_temp


def run_cookiecutter(
    workdir: Path,
    answers: Mapping[str, str],
    *options: str,
    typed: str | None = None,
    default_context: Mapping[str, str] | None = None,
    template: Path = TEMPLATE_ROOT,
) -> CookiecutterRun:
    """The real command a user runs, so its output is what a user sees; its replay files stay in workdir.

    With `typed`, the answers are typed at the prompts (one line each) instead of given with --no-input.
    """
    output_dir, replay_dir, temp_dir = workdir / "out", workdir / "replay", workdir / "temp"
    output_dir.mkdir(exist_ok=True)
    temp_dir.mkdir(exist_ok=True)
    config = workdir / "cookiecutter-config.yaml"
    config.write_text(
        f"replay_dir: {json.dumps(str(replay_dir))}\n"
        + (f"default_context: {json.dumps(dict(default_context))}\n" if default_context else "")
    )
    args = [f"{key}={value}" for key, value in answers.items()]
    command = [sys.executable, "-m", "cookiecutter", "--config-file", str(config), "-o", str(output_dir)]
    result = subprocess.run(
        [*command, *(options or ([] if typed is not None else ["--no-input"])), str(template), *args],
        input=typed,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "TMPDIR": str(temp_dir)},
        cwd=workdir,  # not the template's root, whose local_extensions.py `python -m` would import first
    )
    return CookiecutterRun(result, output_dir, replay_dir, temp_dir)


def bake_with(cookies, changes: Mapping[str, str]) -> Path:
    result = cookies.bake(extra_context=context(**changes))
    assert result.exit_code == 0, result.exception
    assert result.exception is None
    return result.project_path


@pytest.fixture(scope="session")
def bake(cookies_session):
    """Bake the baseline with some answers changed, once per session: tests only read the result."""
    baked: dict[tuple[tuple[str, str], ...], Path] = {}

    def _bake(**changes: str) -> Path:
        key = tuple(sorted(changes.items()))
        if key not in baked:
            baked[key] = bake_with(cookies_session, changes)
        return baked[key]

    return _bake


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
