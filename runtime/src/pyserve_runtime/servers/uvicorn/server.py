"""Run uvicorn under its supervisor, even with one worker (`python -m <this module> APP WORKERS`).

`uvicorn --workers 1` serves in its own process, with nothing above it: a crashed worker is the
whole server gone and SIGHUP kills it. With more workers uvicorn runs a supervisor
(uvicorn.supervisors.Multiprocess) that replaces a worker that dies or stops answering its ping,
and on SIGHUP replaces the workers one at a time, each new one serving before the old one stops.
This runs that supervisor for any number of workers. It costs one small process, which the memory
model counts ([memory] server in deploy/stack.toml).

serve.py passes the plan's worker count; the address, timeouts and log level are
settings.py's; every other number says why it is what it is.
"""

from __future__ import annotations

import sys

import uvicorn
from uvicorn.supervisors import Multiprocess

from pyserve_runtime import logs
from pyserve_runtime.settings import (
    APP_KEEPALIVE_S,
    GRACEFUL_STOP_S,
    UVICORN_WEBSOCKETS,
    WORKER_START_S,
    Settings,
    from_environment,
)


def config(app_module: str, settings: Settings, workers: int) -> uvicorn.Config:
    host, _, port = settings.bind.rpartition(":")
    return uvicorn.Config(
        app_module,
        host=host,
        port=int(port),
        workers=workers,
        # uvloop + httptools (uvicorn[standard]'s C extensions), not pure-Python asyncio and h11,
        # which spend more CPU on every request.
        loop="uvloop",
        http="httptools",
        timeout_keep_alive=APP_KEEPALIVE_S,
        timeout_graceful_shutdown=GRACEFUL_STOP_S,
        # A new worker's start (a reload's, a dead one's replacement) and a worker's answer to the
        # supervisor's ping: past it the supervisor kills the worker and, mid-reload, keeps the old one.
        timeout_worker_healthcheck=WORKER_START_S,
        # WebSockets pinged and their messages capped, without per-message compression.
        **UVICORN_WEBSOCKETS,
        # No limit_max_requests: a recycled uvicorn worker resets the connections it has just read
        # requests from (https://github.com/org/pyserve-template/blob/main/docs/decisions.md#recycling-workers).
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        # served_app.py writes the access line (ACCESS_LOG=1), the same for every server.
        access_log=False,
        log_level=settings.log_level,
        log_config=logs.dict_config(settings, ("uvicorn", "uvicorn.error", "uvicorn.access")),
    )


def main() -> None:
    app_module, workers = sys.argv[1:3]
    served = config(app_module, from_environment(), int(workers))
    Multiprocess(served, sockets=[served.bind_socket()]).run()


if __name__ == "__main__":
    main()
