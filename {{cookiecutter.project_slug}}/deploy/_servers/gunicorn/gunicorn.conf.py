"""gunicorn settings: the plan (pyserve_runtime.tuning) and pyserve_runtime.settings.

Read at start-up and again on SIGHUP (a graceful reload), so the numbers follow the container's
limits and the environment. Run `pyserve plan` to see them and the reasons; the
timeouts, the address and the log level are pyserve_runtime.settings'.
"""

import logging.config
import os
import sys
import threading
import time
from typing import Any

from gunicorn import glogging
from pyserve_runtime import logs, settings, tuning
from pyserve_runtime.tuning.model import GUNICORN_ASGI_WORKER

_plan = tuning.start_up_plan()
_settings = settings.from_environment()

# --- How many, and of what kind ------------------------------------------------------------
workers = _plan.workers
threads = _plan.threads
worker_class = _plan.worker_class
if worker_class == GUNICORN_ASGI_WORKER:
    # Its WebSockets pinged and their messages capped, without per-message compression.
    worker_class = "pyserve_runtime.servers.gunicorn.asgi_worker.UvicornWorkerForWebSockets"

# --- Timeouts, coupled across layers -----------------------------------------------------------
# REQUEST_TIMEOUT is nginx's proxy_read_timeout too: when nginx gives up on a request (504), the
# app gives up on it as well. A worker silent this long is killed and replaced, and one whose
# request runs this long retires (see "A request that hangs" below).
timeout = _settings.request_timeout_s
graceful_timeout = settings.GRACEFUL_STOP_S
keepalive = settings.APP_KEEPALIVE_S

# --- Recycling ----------------------------------------------------------------------------------
# Replace a worker after this many requests (jittered so they do not all restart at once):
# bounds slow leaks and heap fragmentation. High, because each new worker imports the app again on
# the same CPU quota. Never the uvicorn worker: a recycled one resets connections it has just read
# requests from (https://github.com/org/pyserve-template/blob/main/docs/decisions.md#recycling-workers).
max_requests = 0 if _plan.worker_class == GUNICORN_ASGI_WORKER else 100_000
max_requests_jitter = 10_000

# --- Containers ----------------------------------------------------------------------------------
# The heartbeat file on tmpfs: a disk-backed /tmp can stall the heartbeat and get workers killed.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# gunicorn 27 opens a control socket under ~/.gunicorn: unwritable on a read-only root filesystem.
control_socket_disable = True
# Trust X-Forwarded-* only from the proxy in front (nginx on loopback or the pod's sidecar).
forwarded_allow_ips = _settings.forwarded_allow_ips

# --- Logs to stderr, where the container runtime collects them ---------------------------------------
# In LOG_FORMAT (json or text), as the app's own lines: pyserve_runtime.logs. The access line is
# pyserve_runtime.served_app's (ACCESS_LOG=1), the same for every server, so gunicorn's own is off. Not
# logconfig_dict: with it gunicorn builds its access line for every request, even when nothing
# writes it.
accesslog = None
errorlog = "-"
loglevel = _settings.log_level


class LogsAsTheAppDoes(glogging.Logger):  # type: ignore[misc]  # gunicorn ships no types
    def setup(self, cfg: Any) -> None:
        super().setup(cfg)  # also on a reload
        logging.config.dictConfig(logs.dict_config(_settings, ("gunicorn.error", "gunicorn.access")))


logger_class = LogsAsTheAppDoes


# --- A request that hangs ------------------------------------------------------------------------
# `timeout` catches a sync worker stuck in one request: it stops answering the arbiter. A gthread
# worker's main loop keeps answering while one of its threads hangs, so that thread would stay taken
# for good. Each worker therefore watches its own requests: one running past `timeout` makes the
# worker retire. It takes no new connection, its other requests get graceful_timeout to finish, and
# the arbiter starts a fresh worker (killing this one if the hung thread keeps it from exiting).
# gunicorn ships no types: its worker, request and server objects are Any here.
def post_worker_init(worker: Any) -> None:
    worker.requests_running = {}
    threading.Thread(target=_retire_when_a_request_hangs, args=(worker,), daemon=True).start()


def pre_request(worker: Any, req: Any) -> None:
    worker.requests_running[threading.get_ident()] = (time.monotonic(), f"{req.method} {req.path}")


def post_request(worker: Any, req: Any, environ: dict[str, Any], resp: Any) -> None:
    worker.requests_running.pop(threading.get_ident(), None)


def _retire_when_a_request_hangs(worker: Any) -> None:
    while worker.alive:
        time.sleep(1)
        now = time.monotonic()
        for started, request in list(worker.requests_running.values()):
            if now - started > timeout:
                worker.log.error(
                    "worker %s: %s has run %.0f s, over the %d s timeout; retiring this worker",
                    worker.pid, request, now - started, timeout,
                )  # fmt: skip
                worker.alive = False
                return


def on_reload(server: Any) -> None:
    # pyserve serve logged the plan at start; a reload (SIGHUP) re-reads this file and the limits.
    print(_plan.as_json(), file=sys.stderr, flush=True)
