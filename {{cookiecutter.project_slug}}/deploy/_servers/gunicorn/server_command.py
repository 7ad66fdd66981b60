"""gunicorn's command line. Its numbers live in deploy/gunicorn.conf.py, which asks deploy/tuning/."""

from __future__ import annotations

import sys
from pathlib import Path

from .settings import Settings
from .tuning import Plan

CONFIG = Path(__file__).resolve().with_name("gunicorn.conf.py")


def argv(plan: Plan, settings: Settings) -> list[str]:
    # APP_MODULE with the server's own liveness answer in front (deploy/served_app.py); over WSGI
    # also told the client's address by nginx (deploy/gunicorn_app.py), which uvicorn's worker does itself.
    app = "deploy.gunicorn_app:app" if settings.interface == "wsgi" else "deploy.served_app:app"
    return [sys.executable, "-m", "gunicorn", "--config", str(CONFIG), "--bind", settings.bind, app]
