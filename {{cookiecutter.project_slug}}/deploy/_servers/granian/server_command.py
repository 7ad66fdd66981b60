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
        "--no-ws" if plan.interface == "wsgi" else "--ws",
        # deploy/granian_app.py: APP_MODULE (deploy/served_app.py) behind a proxy-header check.
        "granian_app:app",
        "--log-level", os.environ.get("LOG_LEVEL", "info").lower(),
    ]  # fmt: skip
