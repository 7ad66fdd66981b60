"""One request as the server layer sees it (served_app.py): its id on the log lines written
while it is served (logs.py), its figures in the worker's metrics (metrics.py) and,
with ACCESS_LOG=1, its access line: the same line whichever server runs the app."""

from __future__ import annotations

import logging
import time
import uuid

from . import logs, metrics

access_log = logging.getLogger(logs.ACCESS_LOGGER)
# A client's own id is nginx's to check; this only keeps an odd one off the log lines.
MAX_REQUEST_ID = 128


class ServedRequest:
    """One request from its start to its last byte: its id in the logs, its figures in the metrics."""

    def __init__(
        self, method: str, path: str, client: str | None, request_id: str | None, request_start: str | None
    ) -> None:
        self.method = method
        self.path = path
        # The client's address as the server was told it by nginx (the app sees the same).
        self.client = client
        self.id = request_id if request_id and len(request_id) <= MAX_REQUEST_ID else uuid.uuid4().hex
        self.queued_s = metrics.queue_seconds(request_start, time.time())
        self.status = 500  # until the app starts a response
        self.started = metrics.request_started(self.queued_s)
        logs.request_id.set(self.id)

    def finish(self, *, streamed: bool = False) -> None:
        """The last byte is out: counted (unless it was a stream: metrics.py), logged, and this
        thread's or task's later lines no longer carry the id."""
        duration_s = metrics.request_finished(self.started, self.status, streamed=streamed)
        if access_log.isEnabledFor(logging.INFO):
            access_log.info(
                "%s %s %d",
                self.method, self.path, self.status,
                extra={
                    "method": self.method, "path": self.path, "status": self.status, "client": self.client,
                    "duration_ms": round(duration_s * 1000, 3),
                    "queue_ms": None if self.queued_s is None else round(self.queued_s * 1000, 3),
                },
            )  # fmt: skip
        logs.request_id.set(None)
