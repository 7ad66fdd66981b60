"""A bake's uv.lock: written by uv when the project is generated, so that its first build is locked.

uv is the one beside this Python (the template's own venv, or cookiecutter's when uv was installed
with it), else the one on PATH. It locks from its cache when that holds every package, else from
the index. Without uv, or offline with a cache that lacks a package, the project is still written
and one line says what to run; `make` writes the lock before anything that needs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from . import settings

LOCK_FILE = settings.LOCK_FILES[0]
LOCK_TIMEOUT_S = 120
INSTEAD = "run `make lock` in the project before building (any other `make` target does it too)"


def find_uv() -> str | None:
    beside = Path(sys.executable).parent / "uv"
    return str(beside) if beside.is_file() else shutil.which("uv")


def lock_all(project: Path) -> str:
    """Every lock the project holds; "" once written, else the line that says what to run instead."""
    uv = find_uv()
    if uv is None:
        return f"note: no {LOCK_FILE}: uv is not installed (https://docs.astral.sh/uv/); {INSTEAD}.\n"
    return "".join(lock(uv, project, lock_file) for lock_file in settings.LOCK_FILES)


def lock(uv: str, project: Path, lock_file: str) -> str:
    """`lock_file` written by uv lock beside its pyproject.toml; "" once written, else the line that
    says what to run instead."""
    # Resolved with this Python where it is one the project supports, rather than a downloaded one.
    python = ["--python", sys.executable] if sys.version_info >= (3, 11) else []
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    # From uv's cache alone first (0.04 s here, against about 1 s asking the index again), which
    # also locks a bake made offline; from the index when the cache lacks a package.
    for network in (["--offline"], []):
        try:
            done = subprocess.run(
                [uv, "lock", "--quiet", *network, *python],
                cwd=project / Path(lock_file).parent,
                env=env,
                capture_output=True,
                text=True,
                timeout=LOCK_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return f"note: no {lock_file}: uv lock took over {LOCK_TIMEOUT_S} s; {INSTEAD}.\n"
        if done.returncode == 0:
            return ""
    said = [line for line in done.stderr.splitlines() if line.strip()] or ["(nothing said)"]
    return f"note: no {lock_file}: uv lock failed ({said[0].strip()}); {INSTEAD}.\n"
