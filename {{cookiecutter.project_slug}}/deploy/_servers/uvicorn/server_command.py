"""uvicorn's command line: uvicorn has no config file, so every number is a flag from the plan."""

from __future__ import annotations

import os
import sys


def recycling(workers: int) -> list[str]:
    """Recycle workers to bound slow leaks; jitter keeps them from restarting together.

    Not with one worker: uvicorn then serves in-process, without a supervisor, so a recycled
    worker is the whole server exiting after 2000 requests (measured: nginx answered 502 from
    then on). The container's restart policy and probes replace a dead single process instead.
    """
    return ["--limit-max-requests", "2000", "--limit-max-requests-jitter", "200"] if workers > 1 else []


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
        *recycling(plan.workers),
        "--proxy-headers", "--forwarded-allow-ips", os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
        "--no-access-log", "--log-level", os.environ.get("LOG_LEVEL", "info").lower(),
    ]  # fmt: skip
