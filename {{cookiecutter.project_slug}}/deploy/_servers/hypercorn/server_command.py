"""hypercorn's command line: the numbers live in deploy/hypercorn_config.py, which asks tuning.

The app is deploy/hypercorn_app.py: APP_MODULE (deploy/served_app.py) behind a proxy-header check
(and a sized thread pool for WSGI).
"""

from __future__ import annotations

import sys
from pathlib import Path

CONFIG = Path(__file__).resolve().with_name("hypercorn_config.py")


def argv(plan, bind: str) -> list[str]:
    # deploy/hypercorn_app.py wraps APP_MODULE (read from the environment there) as an ASGI app;
    # "asgi:" tells hypercorn so instead of letting it guess.
    return [sys.executable, "-m", "hypercorn", "--config", f"file:{CONFIG}", "--bind", bind, "asgi:hypercorn_app:app"]
