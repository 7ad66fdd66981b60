"""uvicorn's command line: uvicorn has no config file, so every number is a flag from the plan."""

from __future__ import annotations

import os
import sys


def argv(plan, app_module: str, bind: str) -> list[str]:  # noqa: ANN001
    host, _, port = bind.rpartition(":")
    return [
        sys.executable, "-m", "uvicorn", app_module,
        "--host", host, "--port", port,
        "--workers", str(plan.workers),
        # uvloop + httptools: about 2x the pure-Python h11 stack measured here.
        "--loop", "uvloop", "--http", "httptools",
        # Longer than nginx's upstream keepalive_timeout (60 s): nginx closes idle connections first.
        "--timeout-keep-alive", "75",
        # On SIGTERM, in-flight requests get this long; below compose's stop_grace_period (30 s).
        "--timeout-graceful-shutdown", "20",
        # No --limit-max-requests: a recycled uvicorn worker resets the connections it has just
        # read requests from (measured: nginx logged "Connection reset by peer" and 1 request in
        # ~9000 failed at 64 users), and with one worker it is the whole server exiting.
        "--proxy-headers", "--forwarded-allow-ips", os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
        "--no-access-log", "--log-level", os.environ.get("LOG_LEVEL", "info").lower(),
    ]  # fmt: skip
