"""The app every server runs: APP_MODULE, with the server layer's own work in front of it.

- GET {LIVENESS_PATH} (settings.py) answers 200 "alive" without calling the app, so the
  container healthcheck, `make local` and the Kubernetes probes can tell that the server is up and
  its workers answer, whatever app APP_MODULE names: one from PyPI need not have a /healthz. The
  app's own check, where it has one, is HEALTH_PATH (healthcheck.py). nginx refuses paths
  that start with a dot, so this answer is seen on the app server's own port only.
- Every other request runs with its request id (nginx's X-Request-ID, or a new one for a request
  that did not come through nginx) set for the log lines written while it is served (logs.py),
  is counted in the worker's metrics (metrics.py) and, with ACCESS_LOG=1, gets an access line:
  the same line whichever server runs the app (served_request.py).
- Every answer the app gives carries the release and the commit the image was built as
  (VERSION_HEADER and REVISION_HEADER, from APP_VERSION and APP_REVISION), so that a deploy can be
  checked from outside.
- Over ASGI, a WebSocket, and a response that streams server-sent events, is long-lived: when the
  worker is told to stop, it is closed cleanly before the server acts (long_lived.py).

The interface is the project's (deploy/stack.toml's [stack]): served_wsgi.py or
served_asgi.py.
"""

from __future__ import annotations

import logging
from typing import Any

from . import logs, metrics
from .serve import load_app
from .settings import from_environment


def served(inner: Any, interface: str, headers: tuple[tuple[str, str], ...] = ()) -> Any:
    """`inner` with the server layer in front, for its interface ("wsgi" or "asgi"), `headers` added
    to its answers."""
    # Imported for its interface only: a WSGI worker need not load asyncio (its memory is measured).
    if interface == "asgi":
        from .served_asgi import served as served_asgi

        return served_asgi(inner, headers)
    from .served_wsgi import served as served_wsgi

    return served_wsgi(inner, headers)


logs.stamp_request_ids()
# A Python warning is a log line too, in LOG_FORMAT, not a bare line on stderr.
logging.captureWarnings(True)
metrics.worker_started()
settings = from_environment()
app = served(load_app(settings.app_module), settings.interface, settings.release_headers)
