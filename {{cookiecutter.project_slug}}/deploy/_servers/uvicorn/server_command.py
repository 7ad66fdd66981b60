"""uvicorn's command line: deploy/uvicorn_server.py, which runs uvicorn under its supervisor."""

from __future__ import annotations

import sys

from .settings import Settings
from .tuning import Plan


def argv(plan: Plan, settings: Settings) -> list[str]:
    # deploy/served_app.py: APP_MODULE with the server's own liveness answer in front.
    return [sys.executable, "-m", "deploy.uvicorn_server", "deploy.served_app:app", str(plan.workers)]
