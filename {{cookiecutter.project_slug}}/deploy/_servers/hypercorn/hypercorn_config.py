"""hypercorn settings for {{ cookiecutter.project_name }}, computed at start-up from deploy/tuning.py."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tuning

_plan = tuning.start_up_plan()

workers = _plan.workers
worker_class = "uvloop"
# Longer than nginx's upstream keepalive_timeout (50 s): nginx closes idle connections first.
keep_alive_timeout = 75
# On SIGTERM, in-flight requests get this long; below compose's stop_grace_period (30 s).
graceful_timeout = 20
# hypercorn's default accept backlog is 100, small for a burst behind nginx.
backlog = 2048
# No max_requests: a recycled hypercorn worker dropped a request now and then under load (measured:
# 1 in ~4000 at 32 users back to back answered 502), so workers live until they crash or the
# container restarts.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").upper()
