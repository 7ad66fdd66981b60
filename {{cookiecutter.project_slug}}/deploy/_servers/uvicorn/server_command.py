"""uvicorn's command line: deploy/uvicorn_server.py, which runs uvicorn under its supervisor."""

from __future__ import annotations

import sys
from pathlib import Path

LAUNCHER = Path(__file__).resolve().with_name("uvicorn_server.py")


def argv(plan, app_module: str, bind: str) -> list[str]:  # noqa: ANN001
    return [sys.executable, str(LAUNCHER), app_module, bind, str(plan.workers)]
