"""What every framework's sample app shares: the page, the asset URLs, the work endpoints and (ASGI) the event stream.

Kept free of any framework so that swapping the framework (or deleting the sample) touches one file.
"""

from __future__ import annotations

{% if cookiecutter.__interface == "asgi" %}import asyncio
{% endif %}import json
import logging
import os
import re
import time
from collections.abc import {% if cookiecutter.__interface == "asgi" %}AsyncIterator, {% endif %}Callable
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent
STATIC_DIR = PACKAGE_DIR / "static"
# Where `pyserve static` writes the files as served: hashed copies and the manifest.
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
    """The collected static files (`pyserve static` writes them; nginx or the app serves them)."""
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


def query_number(raw: str | None, default: int, lowest: int, highest: int, name: str) -> int:
    """A whole number from the query string, `default` when absent; ValueError (answered as 400)
    outside lowest..highest."""
    if raw is None or raw == "":
        return default
    value = int(raw)
    if not lowest <= value <= highest:
        raise ValueError(f"{name} must be between {lowest} and {highest}")
    return value


def duration_ms(raw: str | None) -> int:
    """Parse ?ms=N; raise ValueError (answered as 400) for anything but 0..MAX_MS."""
    return query_number(raw, DEFAULT_MS, 0, MAX_MS, "ms")


def request_seen(scheme: str, host: str, client: str | None, url: str) -> dict[str, str | None]:
    """/api/request: how the app sees the request it is serving, through its framework's own API.
    Behind a load balancer that ends TLS these are the client's (nginx's TRUSTED_PROXIES), not the
    proxy's: https, the public host, the client's address, the URLs the app builds."""
    return {"scheme": scheme, "host": host, "client": client, "url": url}


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
{%- if cookiecutter.__interface == "asgi" %}


# /api/events takes ?n=N: that many server-sent events, one a second (ASGI stacks).
DEFAULT_EVENTS = 10
MAX_EVENTS = 600
EVENT_INTERVAL_S = 1.0
# Headers of a server-sent events response: never cached, and never buffered by a proxy (nginx
# honours X-Accel-Buffering; its location for /api/events turns buffering off as well).
EVENT_STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
EVENT_STREAM_TYPE = "text/event-stream"


def event_count(raw: str | None) -> int:
    """Parse ?n=N; raise ValueError (answered as 400) for anything but 1..MAX_EVENTS."""
    return query_number(raw, DEFAULT_EVENTS, 1, MAX_EVENTS, "n")


async def event_stream(count: int) -> AsyncIterator[bytes]:
    """`count` server-sent events, the first at once and then one a second, as a live feed sends
    them: each with an id, which a reconnecting browser sends back as Last-Event-ID."""
    for number in range(count):
        if number:
            await asyncio.sleep(EVENT_INTERVAL_S)
        yield f"id: {number}\ndata: {json.dumps({'event': number, 'of': count})}\n\n".encode()
{%- endif %}
