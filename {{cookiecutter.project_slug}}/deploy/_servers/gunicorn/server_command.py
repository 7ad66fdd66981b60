"""gunicorn's command line. Its numbers live in deploy/gunicorn.conf.py, which asks deploy/tuning/."""

from __future__ import annotations

import sys
from pathlib import Path

from .settings import Settings
from .tuning import Plan

CONFIG = Path(__file__).resolve().with_name("gunicorn.conf.py")


def argv(plan: Plan, settings: Settings) -> list[str]:
    # deploy/served_app.py: APP_MODULE with the server's own liveness answer in front{% if cookiecutter.__interface == "wsgi" %}, and the
    # client's address from nginx (deploy/gunicorn_app.py){% endif %}.
    app = "deploy.{{ 'gunicorn_app' if cookiecutter.__interface == 'wsgi' else 'served_app' }}:app"
    return [sys.executable, "-m", "gunicorn", "--config", str(CONFIG), "--bind", settings.bind, app]
