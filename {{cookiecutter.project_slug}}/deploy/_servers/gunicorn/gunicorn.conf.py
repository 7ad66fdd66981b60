"""gunicorn settings for {{ cookiecutter.project_name }}.

Read at start-up and again on SIGHUP (a graceful reload), so the numbers follow the container's
limits and the environment. Run `python deploy/tuning.py` to see them and the reasons.
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tuning  # noqa: E402

_plan = tuning.start_up_plan()

# --- How many, and of what kind ------------------------------------------------------------
workers = _plan.workers
threads = _plan.threads
worker_class = _plan.worker_class

# --- Where ----------------------------------------------------------------------------------
bind = os.environ.get("BIND") or f"127.0.0.1:{os.environ.get('APP_PORT', '8000')}"

# --- Timeouts, coupled across layers -----------------------------------------------------------
# A worker silent this long is killed and replaced; above the slowest legitimate request.
timeout = 30
# On SIGTERM, in-flight requests get this long; below compose's stop_grace_period (30 s).
graceful_timeout = 20
# Keep idle connections from nginx open longer than nginx's upstream keepalive_timeout (60 s), so
# nginx, not the app, closes them and never reuses a connection the app is closing.
keepalive = 75

# --- Recycling ----------------------------------------------------------------------------------
# Replace a worker after this many requests (jittered so they do not all restart at once):
# bounds slow leaks and heap fragmentation. Not the uvicorn worker (ASGI): as uvicorn itself, a
# recycled one reset connections it had just read requests from (measured: 3 of ~4000 requests
# answered 502 at 32 users back to back), so those live until they crash or the container restarts.
max_requests = 0 if worker_class == tuning.GUNICORN_ASGI_WORKER else 2000
max_requests_jitter = 200

# --- Containers ----------------------------------------------------------------------------------
# The heartbeat file on tmpfs: a disk-backed /tmp can stall the heartbeat and get workers killed.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# gunicorn 27 opens a control socket under ~/.gunicorn: unwritable on a read-only root filesystem.
control_socket_disable = True
# Trust X-Forwarded-* only from the proxy in front (nginx on loopback or the pod's sidecar).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# --- Logs to stdout/stderr, where the container runtime collects them ------------------------------
accesslog = "-" if os.environ.get("ACCESS_LOG", "").lower() in {"1", "true", "yes", "on"} else None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()


def on_reload(server):  # noqa: ANN001, ANN201
    # deploy/serve.py logged the plan at start; a reload (SIGHUP) re-reads this file and the limits.
    print(_plan.as_json(), file=sys.stderr, flush=True)
