"""What each worker records of the requests it serves, for the metrics endpoint (metrics_server.py).

The question they answer is whether the plan holds: are the workers' threads (or event loops) all
busy, and do requests wait before a worker takes them? Every worker process writes its values to
files of its own under PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode, which
serve.py sets up), and the endpoint adds them up.

  app_requests_in_flight{pid}       requests a worker is serving now; against app_plan_threads
  app_request_duration_seconds{status}
                                    the app's own time per request, from its first byte in to its
                                    last out, by status code (its _count: the requests answered)
  app_request_queue_seconds         the time from nginx sending a request to a worker taking it up
                                    (X-Request-Start, which nginx sets): the listen backlog and, on a
                                    threaded worker, the wait for a free thread
  app_worker_starts_total           worker processes started: minus app_plan_workers, the restarts
  app_workers_alive                 worker processes serving now
  app_long_lived_open{kind}         WebSockets and event streams open now (ASGI), against
                                    app_plan_long_lived_connections; an event stream counts here from
                                    its first byte, not as a request in flight or in the durations

Each request writes five values to its worker's files (about 2 us each); no more, as each write
is the cost every request pays.
"""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge, Histogram

# From a fast answer to past REQUEST_TIMEOUT's default (30 s).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# A request that waits at all waits for another to finish: from a millisecond up.
QUEUE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

IN_FLIGHT = Gauge("app_requests_in_flight", "Requests this worker is serving now.", multiprocess_mode="liveall")
DURATION = Histogram(
    "app_request_duration_seconds", "The app's own time per request, by status.", ["status"], buckets=DURATION_BUCKETS
)
QUEUE = Histogram(
    "app_request_queue_seconds", "From nginx sending the request to a worker taking it up.", buckets=QUEUE_BUCKETS
)
WORKER_STARTS = Counter("app_worker_starts", "Worker processes started.")
WORKERS_ALIVE = Gauge("app_workers_alive", "Worker processes serving now.", multiprocess_mode="livesum")
LONG_LIVED_OPEN = Gauge(
    "app_long_lived_open", "WebSockets and event streams open now.", ["kind"], multiprocess_mode="livesum"
)


def worker_started() -> None:
    """Called once per worker process, when it loads the app."""
    WORKER_STARTS.inc()
    WORKERS_ALIVE.set(1)


def queue_seconds(request_start: str | None, now: float) -> float | None:
    """Seconds since nginx's X-Request-Start ("t=<seconds since the epoch>, to the millisecond"),
    None without one. Never below 0: nginx and this worker read the same clock, to the millisecond."""
    if not request_start or not request_start.startswith("t="):
        return None
    try:
        return max(0.0, now - float(request_start[2:]))
    except ValueError:
        return None


def request_started(queued_s: float | None) -> float:
    IN_FLIGHT.inc()
    if queued_s is not None:
        QUEUE.observe(queued_s)
    return time.perf_counter()


def request_finished(started: float, status: int, *, streamed: bool = False) -> float:
    """Records the request; returns its duration in seconds. A stream was counted as a request only
    until it became one (long_lived_opened)."""
    duration = time.perf_counter() - started
    if not streamed:
        IN_FLIGHT.dec()
        DURATION.labels(status).observe(duration)
    return duration


def long_lived_opened(kind: str) -> None:
    """A WebSocket is accepted, or a response turns out to be an event stream ("stream"): from now on
    it is a long-lived connection, no longer a request in flight."""
    if kind == "stream":
        IN_FLIGHT.dec()
    LONG_LIVED_OPEN.labels(kind).inc()


def long_lived_closed(kind: str) -> None:
    LONG_LIVED_OPEN.labels(kind).dec()
