"""hypercorn's command line: the numbers live in deploy/hypercorn_config.py, which asks tuning/.

The app is servers/hypercorn/app.py: APP_MODULE (served_app.py) behind a proxy-header check
(and a sized thread pool for WSGI).
"""

from __future__ import annotations

import sys

from pyserve_runtime.settings import DEPLOY, Settings
from pyserve_runtime.tuning import Plan

# The project's own: its team tunes it.
CONFIG = DEPLOY / "hypercorn_config.py"


def argv(plan: Plan, settings: Settings) -> list[str]:
    # "asgi:" tells hypercorn that servers/hypercorn/app.py is an ASGI app instead of letting it guess.
    app = f"asgi:{__package__}.app:app"
    return [sys.executable, "-m", "hypercorn", "--config", f"file:{CONFIG}", "--bind", settings.bind, app]
