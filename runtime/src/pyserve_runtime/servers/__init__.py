"""Each server's command line, one subpackage per server: `command.argv(plan, settings)` is what
`pyserve serve` execs for the project's server (deploy/stack.toml's [stack] server)."""

from __future__ import annotations

import importlib

from ..settings import SettingError, Settings
from ..tuning import Plan

SERVERS = ("gunicorn", "uvicorn", "hypercorn", "granian")


def argv(server: str, plan: Plan, settings: Settings) -> list[str]:
    if server not in SERVERS:
        raise SettingError(f"server: {server!r} is not one of {', '.join(SERVERS)}")
    command: list[str] = importlib.import_module(f"{__name__}.{server}.command").argv(plan, settings)
    return command
