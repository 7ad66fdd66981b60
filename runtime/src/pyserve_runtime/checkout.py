"""git in the project's checkout, for the commands that read it (template updates, publishing)."""

from __future__ import annotations

import subprocess

from .settings import PROJECT


def git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=PROJECT, capture_output=True, text=True, check=False)


def git_answer(*args: str) -> str | None:
    """git's answer, or None where it has none (no repository, no tag here)."""
    result = git(*args)
    return result.stdout.strip() if result.returncode == 0 else None
