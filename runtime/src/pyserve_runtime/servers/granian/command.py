"""granian's command line: every number is a flag, from the plan or settings.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pyserve_runtime import logs
from pyserve_runtime.settings import APP_KEEPALIVE_S, GRACEFUL_STOP_S, Settings
from pyserve_runtime.tuning import Plan

# granian has no idle keep-alive timeout of its own: an idle connection from nginx is closed when
# its HTTP/1 header-read timeout runs out (30 s by default), and that timeout is 60 s at most.
KEEPALIVE_S = min(APP_KEEPALIVE_S, 60)
# granian's default listen backlog.
BACKLOG = 1024


def logging_config(settings: Settings) -> Path:
    """granian reads its logging config from a file: logs.py's, written into RUNTIME_DIR.
    The access line is served_app.py's (ACCESS_LOG=1), so granian's own stays off."""
    path = settings.runtime_dir / "granian-logging.json"
    settings.runtime_dir.mkdir(parents=True, exist_ok=True)
    config = logs.dict_config(settings, ("_granian", "granian.access"))
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def argv(plan: Plan, settings: Settings) -> list[str]:
    host, _, port = settings.bind.rpartition(":")
    threads = ["--blocking-threads", str(plan.threads)] if plan.interface == "wsgi" else []
    # granian serves at most --backpressure requests at once per worker (default: 1024 over the
    # workers), and an open WebSocket or event stream is one of them for as long as it lasts.
    backpressure = ["--backpressure", str(BACKLOG // plan.workers + plan.long_lived_connections)]
    return [
        sys.executable, "-m", "granian",
        "--interface", plan.interface,  # granian's default is its own RSGI
        "--host", host, "--port", port,
        "--workers", str(plan.workers), *threads, *backpressure,
        # Off by default in granian: a crashed worker would otherwise stay dead.
        "--respawn-failed-workers",
        # Recycle workers to bound slow leaks (granian's equivalent of max-requests).
        "--workers-lifetime", "3600",
        "--workers-kill-timeout", str(GRACEFUL_STOP_S),
        "--http1-header-read-timeout", str(KEEPALIVE_S * 1000),
        "--no-ws" if plan.interface == "wsgi" else "--ws",
        # servers/granian/app.py: APP_MODULE (served_app.py) behind a proxy-header check.
        "pyserve_runtime.servers.granian.app:app",
        "--log-level", settings.log_level,
        "--log-config", str(logging_config(settings)),
    ]  # fmt: skip
