"""hypercorn's command line: the numbers live in deploy/hypercorn_config.py, which asks deploy/tuning/.

The app is deploy/hypercorn_app.py: APP_MODULE (deploy/served_app.py) behind a proxy-header check
(and a sized thread pool for WSGI).
"""

from __future__ import annotations

import sys
from pathlib import Path

from .settings import Settings
from .tuning import Plan

CONFIG = Path(__file__).resolve().with_name("hypercorn_config.py")


def argv(plan: Plan, settings: Settings) -> list[str]:
    # "asgi:" tells hypercorn that deploy/hypercorn_app.py is an ASGI app instead of letting it guess.
    app = "asgi:deploy.hypercorn_app:app"
    return [sys.executable, "-m", "hypercorn", "--config", f"file:{CONFIG}", "--bind", settings.bind, app]
