"""granian's command line: every number is a flag from the plan."""

from __future__ import annotations

import os
import sys


def argv(plan, bind: str) -> list[str]:
    host, _, port = bind.rpartition(":")
    threads = ["--blocking-threads", str(plan.threads)] if plan.interface == "wsgi" else []
    return [
        sys.executable, "-m", "granian",
        "--interface", plan.interface,  # granian's default is its own RSGI
        "--host", host, "--port", port,
        "--workers", str(plan.workers), *threads,
        # Off by default in granian: a crashed worker would otherwise stay dead.
        "--respawn-failed-workers",
        # Recycle workers to bound slow leaks (granian's equivalent of max-requests).
        "--workers-lifetime", "3600",
        # On SIGTERM, in-flight requests get this long; below compose's stop_grace_period (30 s).
        "--workers-kill-timeout", "20",
        # granian has no idle keep-alive timeout of its own: an idle connection from nginx is closed
        # when this header-read timeout runs out (30 s by default, 60 s at most). Longer than nginx's
        # upstream keepalive_timeout (50 s), so nginx closes idle connections first.
        "--http1-header-read-timeout", "60000",
        "--no-ws" if plan.interface == "wsgi" else "--ws",
        # deploy/granian_app.py: APP_MODULE (deploy/served_app.py) behind a proxy-header check.
        "granian_app:app",
        "--log-level", os.environ.get("LOG_LEVEL", "info").lower(),
    ]  # fmt: skip
