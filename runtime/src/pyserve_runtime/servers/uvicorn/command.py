"""uvicorn's command line: servers/uvicorn/server.py, which runs uvicorn under its supervisor."""

from __future__ import annotations

import sys

from pyserve_runtime.settings import Settings
from pyserve_runtime.tuning import Plan


def argv(plan: Plan, settings: Settings) -> list[str]:
    # served_app.py: APP_MODULE with the server's own liveness answer in front.
    return [sys.executable, "-m", f"{__package__}.server", "pyserve_runtime.served_app:app", str(plan.workers)]
