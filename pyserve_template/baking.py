"""Baking a project and running it: what the template's tests and its benchmark share.

`run_cookiecutter` runs the real command a user runs; `project_venv` gives a generated project a
virtualenv of its lock (one per lock, cached); `free_port` a port on 127.0.0.1 for its nginx and
app server.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from . import CACHE_ROOT, TEMPLATE_ROOT

VENV_CACHE = Path(os.environ.get("PYSERVE_VENV_CACHE") or CACHE_ROOT / "venvs")
TOOLS = Path(sys.executable).parent


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


def project_venv(project: Path, dev: bool = False) -> Path:
    """A venv of the project's lock, as `uv sync --locked` installs it (the service's dependencies
    alone, as in its image; with `dev`, its tools too), shared by every project with the same lock
    and the same vendored runtime."""
    locked = [project / "pyproject.toml", project / "uv.lock"]
    locked += sorted(path for path in (project / "vendor").rglob("*") if path.is_file())
    pins = b"".join(str(path.relative_to(project)).encode() + path.read_bytes() for path in locked)
    key = hashlib.sha256(pins + repr(dev).encode() + sys.version.encode() + sys.base_prefix.encode()).hexdigest()[:16]
    venv = VENV_CACHE / key
    VENV_CACHE.mkdir(parents=True, exist_ok=True)
    with (VENV_CACHE / f"{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test runs build each venv once
        if not (venv / ".complete").exists():  # a build cut short leaves no marker and is redone
            shutil.rmtree(venv, ignore_errors=True)
            uv(project, "sync", "--quiet", "--locked", *([] if dev else ["--no-dev"]), UV_PROJECT_ENVIRONMENT=str(venv))
            (venv / ".complete").touch()
    return venv


def dependencies(project: Path) -> list[str]:
    """The service's own requirements, as its pyproject.toml lists them."""
    with (project / "pyproject.toml").open("rb") as handle:
        return list(tomllib.load(handle)["project"]["dependencies"])


def uv(project: Path, *args: str, **env: str) -> str:
    """The suite's uv in `project`, on this Python (never a downloaded one); what it printed (its
    errors go to the test's output)."""
    command = [str(TOOLS / "uv"), *args, "--python", sys.executable]
    environment = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", **env}
    return subprocess.run(command, cwd=project, env=environment, check=True, stdout=subprocess.PIPE, text=True).stdout


def add_dependency(project: Path, requirement: str) -> None:
    """What a team does to add one: `uv add` (pyproject.toml and uv.lock), without installing."""
    uv(project, "add", "--quiet", "--no-sync", requirement)


def add_dependency_without_locking(project: Path, requirement: str) -> None:
    """A requirement written into pyproject.toml by hand, uv.lock left as it was: a stale lock."""
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text()
    pyproject.write_text(text.replace("dependencies = [\n", f'dependencies = [\n    "{requirement}",\n', 1))


EPHEMERAL_PORTS = Path("/proc/sys/net/ipv4/ip_local_port_range")
_handed_out: set[int] = set()


def free_port() -> int:
    """A free port on 127.0.0.1, below the kernel's ephemeral range and never handed out twice.

    A port from bind(0) is an ephemeral one, and any outbound connection made before the server
    binds it (make local's readiness polls) may take it as its own local port: once, nginx's
    bind() failed with "Address already in use".
    """
    lowest_ephemeral = int(EPHEMERAL_PORTS.read_text().split()[0])
    # Each of the test run's workers (pytest-xdist's gw0, gw1, ...) draws from its own slice.
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    width = (lowest_ephemeral - 10_000) // workers
    while True:
        port = random.randrange(10_000 + worker * width, 10_000 + (worker + 1) * width)
        if port in _handed_out:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
