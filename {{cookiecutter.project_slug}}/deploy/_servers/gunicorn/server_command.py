"""gunicorn's command line. Its numbers live in deploy/gunicorn.conf.py, which asks deploy/tuning.py."""

from __future__ import annotations

import sys
from pathlib import Path

CONFIG = Path(__file__).resolve().with_name("gunicorn.conf.py")


def argv(plan: object, bind: str) -> list[str]:
    # deploy/served_app.py: APP_MODULE with the server's own liveness answer in front.
    return [sys.executable, "-m", "gunicorn", "--config", str(CONFIG), "--bind", bind, "served_app:app"]
