"""gunicorn's command line. Its numbers live in deploy/gunicorn.conf.py, which asks tuning/."""

from __future__ import annotations

import sys

from pyserve_runtime.settings import DEPLOY, Settings
from pyserve_runtime.tuning import Plan

# The project's own: its team tunes it.
CONFIG = DEPLOY / "gunicorn.conf.py"


def argv(plan: Plan, settings: Settings) -> list[str]:
    # APP_MODULE with the server's own liveness answer in front (served_app.py); over WSGI
    # also told the client's address by nginx (servers/gunicorn/wsgi_app.py), which uvicorn's worker does itself.
    app = f"{__package__}.wsgi_app:app" if settings.interface == "wsgi" else "pyserve_runtime.served_app:app"
    return [sys.executable, "-m", "gunicorn", "--config", str(CONFIG), "--bind", settings.bind, app]
