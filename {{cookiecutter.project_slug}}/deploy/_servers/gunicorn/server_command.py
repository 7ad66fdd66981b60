"""gunicorn's command line. Its numbers live in deploy/gunicorn.conf.py, which asks deploy/tuning.py."""

from __future__ import annotations

import sys
from pathlib import Path

CONFIG = Path(__file__).resolve().with_name("gunicorn.conf.py")


def argv(plan: object, app_module: str, bind: str) -> list[str]:
    return [sys.executable, "-m", "gunicorn", "--config", str(CONFIG), "--bind", bind, app_module]
