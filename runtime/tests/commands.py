"""The runtime's command as a shell runs it, in a project directory."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pyserve_runtime


def pyserve(project: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The installed console script where there is one, else the same entry point through -m."""
    script = shutil.which("pyserve", path=str(Path(sys.executable).parent))
    command = [script] if script else [sys.executable, "-m", "pyserve_runtime"]
    return subprocess.run(
        [*command, *args],
        cwd=project,
        capture_output=True,
        text=True,
        # Where this process found the package: an installed one, or the source tree under test.
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(pyserve_runtime.__file__).parent.parent), **env},
        check=False,
    )
