"""uvicorn's command line: deploy/uvicorn_server.py, which runs uvicorn under its supervisor."""

from __future__ import annotations

import sys
from pathlib import Path

LAUNCHER = Path(__file__).resolve().with_name("uvicorn_server.py")


def argv(plan, bind: str) -> list[str]:
    # deploy/served_app.py: APP_MODULE with the server's own liveness answer in front.
    return [sys.executable, str(LAUNCHER), "served_app:app", bind, str(plan.workers)]
