"""hypercorn settings for {{ cookiecutter.project_name }}, computed at start-up from deploy/tuning.py."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tuning  # noqa: E402

_plan = tuning.start_up_plan()

workers = _plan.workers
worker_class = "uvloop"
# Longer than nginx's upstream keepalive_timeout (60 s): nginx closes idle connections first.
keep_alive_timeout = 75
# On SIGTERM, in-flight requests get this long; below compose's stop_grace_period (30 s).
graceful_timeout = 20
# hypercorn's default accept backlog is 100, small for a burst behind nginx.
backlog = 2048
# Recycle workers to bound slow leaks; jitter keeps them from restarting together.
max_requests = 2000
max_requests_jitter = 200
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").upper()
