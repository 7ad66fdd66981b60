"""hypercorn's command line: the numbers live in deploy/hypercorn_config.py, which asks tuning."""

from __future__ import annotations

import sys
from pathlib import Path

CONFIG = Path(__file__).resolve().with_name("hypercorn_config.py")


def argv(plan, app_module: str, bind: str) -> list[str]:  # noqa: ANN001
    # "asgi:" / "wsgi:" tells hypercorn what the app is instead of letting it guess.
    return [sys.executable, "-m", "hypercorn", "--config", f"file:{CONFIG}", "--bind", bind,
            f"{plan.interface}:{app_module}"]
