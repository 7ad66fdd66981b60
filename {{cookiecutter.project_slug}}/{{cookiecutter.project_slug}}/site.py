"""What every framework's sample app shares: the page, the asset URLs and the two work endpoints.

Kept free of any framework so that swapping the framework (or deleting the sample) touches one file.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent
STATIC_DIR = PACKAGE_DIR / "static"
# Where deploy/collect_static.py writes the files as served: hashed copies and the manifest.
MANIFEST_NAME = "staticfiles.json"

# /api/io and /api/cpu take ?ms=N. The ceiling keeps one request from holding a worker longer
# than the server's timeout: a load test asking for more gets 400, not a killed worker.
DEFAULT_MS = 100
MAX_MS = 10_000

# In templates/index.html, "@static/css/site.css" stands for that asset's URL.
ASSET_REFERENCE = re.compile(r"@static/([\w./-]+)")


def static_url() -> str:
    """Base URL of the static files: /static/ behind nginx or the app, a CDN's URL otherwise."""
    base = os.environ.get("STATIC_URL", "/static/")
    return base if base.endswith("/") else base + "/"


def static_root() -> Path:
    """The collected static files (deploy/collect_static.py writes them; nginx or the app serves them)."""
    return Path(os.environ.get("STATIC_ROOT") or PROJECT_DIR / "build" / "static")


@lru_cache(maxsize=1)
def hashed_names() -> dict[str, str]:
    """css/site.css -> css/site.0123456789ab.css, from the manifest; empty before collection."""
    try:
        return json.loads((static_root() / MANIFEST_NAME).read_text(encoding="utf-8"))["paths"]
    except FileNotFoundError:
        return {}


def asset_url(path: str) -> str:
    """The URL of a static asset: its hashed name once collected, so it can be cached for a year."""
    return static_url() + hashed_names().get(path, path)


@lru_cache(maxsize=4)
def index_html(url_for: Callable[[str], str] = asset_url) -> str:
    page = (PACKAGE_DIR / "templates" / "index.html").read_text(encoding="utf-8")
    return ASSET_REFERENCE.sub(lambda match: url_for(match.group(1)), page)


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
    # One of the app's own lines: it carries the request's id too (LOG_LEVEL=debug shows it).
    log.debug("burnt %d ms of CPU in %d rounds", ms, rounds)
    return {"cpu_ms": ms, "rounds": rounds}
