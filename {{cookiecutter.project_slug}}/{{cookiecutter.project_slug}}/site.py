"""What every framework's sample app shares: the page, the asset URLs and the two work endpoints.

Kept free of any framework so that swapping the framework (or deleting the sample) touches one file.
"""

from __future__ import annotations

import os
import time
from functools import lru_cache
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
STATIC_DIR = PACKAGE_DIR / "static"

# /api/io and /api/cpu take ?ms=N. The ceiling keeps one request from holding a worker longer
# than the server's timeout: a load test asking for more gets 400, not a killed worker.
DEFAULT_MS = 100
MAX_MS = 10_000


def static_url() -> str:
    """Base URL of the static files: /static/ behind nginx or the app, a CDN's URL otherwise."""
    base = os.environ.get("STATIC_URL", "/static/")
    return base if base.endswith("/") else base + "/"


@lru_cache(maxsize=1)
def index_html() -> str:
    page = (PACKAGE_DIR / "templates" / "index.html").read_text(encoding="utf-8")
    return page.replace("__STATIC_URL__", static_url())


def duration_ms(raw: str | None) -> int:
    """Parse ?ms=N; raise ValueError (answered as 400) for anything but 0..MAX_MS."""
    if raw is None or raw == "":
        return DEFAULT_MS
    value = int(raw)
    if not 0 <= value <= MAX_MS:
        raise ValueError(f"ms must be between 0 and {MAX_MS}")
    return value


def burn_cpu(ms: int) -> dict[str, int]:
    """Keep one core busy for about `ms` milliseconds of CPU time, as a real computation would."""
    deadline = time.thread_time() + ms / 1000
    rounds = 0
    while time.thread_time() < deadline:
        sum(i * i for i in range(1_000))
        rounds += 1
    return {"cpu_ms": ms, "rounds": rounds}
