"""Run uvicorn under its supervisor, even with one worker: `python deploy/uvicorn_server.py APP BIND WORKERS`.

`uvicorn --workers 1` serves in its own process, with nothing above it: a crashed worker is the
whole server gone and SIGHUP kills it. With more workers uvicorn runs a supervisor
(uvicorn.supervisors.Multiprocess) that replaces a worker that dies or stops answering its ping,
and on SIGHUP replaces the workers one at a time, each new one serving before the old one stops.
This runs that supervisor for any number of workers. It costs one small process, which the memory
model counts (tuning.SERVER_MEMORY_MIB).

deploy/serve.py passes the plan's worker count (deploy/tuning.py); every other number says why it is what it is.
"""

from __future__ import annotations

import os
import sys

import uvicorn
from uvicorn.supervisors import Multiprocess


def config(app_module: str, bind: str, workers: int) -> uvicorn.Config:
    host, _, port = bind.rpartition(":")
    return uvicorn.Config(
        app_module,
        host=host,
        port=int(port),
        workers=workers,
        # uvloop + httptools (uvicorn[standard]'s C extensions), not pure-Python asyncio and h11,
        # which spend more CPU on every request.
        loop="uvloop",
        http="httptools",
        # Longer than nginx's upstream keepalive_timeout (50 s): nginx closes idle connections first.
        timeout_keep_alive=75,
        # On SIGTERM, in-flight requests get this long; below compose's stop_grace_period (30 s).
        timeout_graceful_shutdown=20,
        # No limit_max_requests: a recycled uvicorn worker resets the connections it has just read
        # requests from (measured: nginx logged "Connection reset by peer" and 1 request in ~9000
        # failed at 64 users).
        proxy_headers=True,
        forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
        access_log=False,
        log_level=os.environ.get("LOG_LEVEL", "info").lower(),
    )


def main() -> None:
    app_module, bind, workers = sys.argv[1:4]
    settings = config(app_module, bind, int(workers))
    Multiprocess(settings, sockets=[settings.bind_socket()]).run()


if __name__ == "__main__":
    main()
