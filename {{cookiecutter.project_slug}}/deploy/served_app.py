"""The app every server runs: APP_MODULE, with the server layer's own work in front of it.

- GET {LIVENESS_PATH} (deploy/settings.py) answers 200 "alive" without calling the app, so the
  container healthcheck, `make local` and the Kubernetes probes can tell that the server is up and
  its workers answer, whatever app APP_MODULE names: one from PyPI need not have a /healthz. The
  app's own check, where it has one, is HEALTH_PATH (deploy/healthcheck.py). nginx refuses paths
  that start with a dot, so this answer is seen on the app server's own port only.
- Every other request runs with its request id (nginx's X-Request-ID, or a new one for a request
  that did not come through nginx) set for the log lines written while it is served (deploy/logs.py),
  is counted in the worker's metrics (deploy/metrics.py) and, with ACCESS_LOG=1, gets an access line:
  the same line whichever server runs the app.{% if cookiecutter.__interface == "asgi" %}
- A WebSocket, and a response that streams server-sent events, is long-lived: when the worker is told
  to stop, it is closed cleanly before the server acts (deploy/long_lived.py).{% endif %}
"""

from __future__ import annotations

import logging
import time
import uuid
{% if cookiecutter.__interface == 'wsgi' %}from collections.abc import Callable, Iterable, Iterator{% else %}from collections.abc import Awaitable, Callable{% endif %}
from typing import Any

from . import logs, {% if cookiecutter.__interface == "asgi" %}long_lived, {% endif %}metrics
from .serve import load_app
from .settings import LIVENESS_PATH, from_environment

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
        """The last byte is out: counted (unless it was a stream: deploy/metrics.py), logged, and this
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

{% if cookiecutter.__interface == "wsgi" %}
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class ClosingBody:
    """The app's response body, passed through; when the server closes it, the request is finished."""

    def __init__(self, body: Iterable[bytes], finish: Callable[[], None]) -> None:
        self.body = body
        self.finish = finish

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.body)

    def close(self) -> None:
        try:
            if hasattr(self.body, "close"):
                self.body.close()
        finally:
            self.finish()


def finished_on_close(body: Iterable[bytes], environ: dict[str, Any], finish: Callable[[], None]) -> Iterable[bytes]:
    """The body, with `finish` run once the server is done with it. A body the server's own
    wsgi.file_wrapper made is kept as it is (the server sends it with sendfile()), its close() extended."""
    file_wrapper = environ.get("wsgi.file_wrapper")
    if isinstance(file_wrapper, type) and isinstance(body, file_wrapper):
        close = getattr(body, "close", None)

        def close_and_finish() -> None:
            try:
                if close is not None:
                    close()
            finally:
                finish()

        body.close = close_and_finish
        return body
    return ClosingBody(body, finish)


def served(inner: WSGIApp) -> WSGIApp:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == LIVENESS_PATH:
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "6")])
            return [b"alive\n"]
        request = ServedRequest(
            environ.get("REQUEST_METHOD", ""),
            path,
            environ.get("REMOTE_ADDR"),
            environ.get("HTTP_X_REQUEST_ID"),
            environ.get("HTTP_X_REQUEST_START"),
        )

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[..., Any]:
            request.status = int(status[:3])
            return start_response(status, headers, exc_info)

        try:
            body = inner(environ, start)
        except BaseException:
            request.finish()
            raise
        return finished_on_close(body, environ, request.finish)

    return app
{%- else %}
ASGIApp = Callable[[dict[str, Any], Callable[..., Awaitable[Any]], Callable[..., Awaitable[None]]], Awaitable[None]]


def header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def client_address(scope: dict[str, Any]) -> str | None:
    client = scope.get("client")
    return client[0] if client else None


async def serve_websocket(
    inner: ASGIApp, scope: dict[str, Any], receive: Callable[..., Awaitable[Any]], send: Callable[..., Awaitable[None]]
) -> None:
    """A WebSocket: its request id on the app's lines, and a close with 1001 when the worker stops."""
    logs.request_id.set(header(scope, b"x-request-id") or uuid.uuid4().hex)
    connection = long_lived.websocket(send, receive)
    started = time.monotonic()
    close_code: int | None = None

    async def send_and_track(message: dict[str, Any]) -> None:
        nonlocal close_code
        await connection.send(message)
        if message["type"] == "websocket.accept":
            await long_lived.worker.opened(connection)
        elif message["type"] == "websocket.close":
            close_code = message.get("code", 1000)
            long_lived.worker.ended(connection)

    try:
        await inner(scope, connection.receive, send_and_track)
    except long_lived.Stopped:
        pass
    finally:
        await connection.farewell_written()
        long_lived.worker.ended(connection)
        if connection.closed_for_stop:
            close_code = long_lived.GOING_AWAY
        if access_log.isEnabledFor(logging.INFO):
            duration_ms = round((time.monotonic() - started) * 1000, 3)
            access_log.info(
                "WEBSOCKET %s %s", scope["path"], close_code,
                extra={
                    "method": "WEBSOCKET", "path": scope["path"], "status": close_code,
                    "client": client_address(scope), "duration_ms": duration_ms,
                },
            )  # fmt: skip
        logs.request_id.set(None)


def served(inner: ASGIApp) -> ASGIApp:
    async def app(
        scope: dict[str, Any], receive: Callable[..., Awaitable[Any]], send: Callable[..., Awaitable[None]]
    ) -> None:
        if scope["type"] == "websocket":
            await serve_websocket(inner, scope, receive, send)
            return
        if scope["type"] != "http":  # lifespan
            await inner(scope, receive, send)
            return
        if scope["path"] == LIVENESS_PATH:
            headers = [(b"content-type", b"text/plain"), (b"content-length", b"6")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b"alive\n"})
            return
        request = ServedRequest(
            scope["method"],
            scope["path"],
            client_address(scope),
            header(scope, b"x-request-id"),
            header(scope, b"x-request-start"),
        )
        stream: long_lived.LongLived | None = None

        async def send_and_note_status(message: dict[str, Any]) -> None:
            nonlocal stream
            if stream is not None:
                await stream.send(message)
                if not message.get("more_body", False):
                    long_lived.worker.ended(stream)
                return
            await send(message)
            if message["type"] == "http.response.start":
                request.status = message["status"]
                if long_lived.is_event_stream(message):
                    stream = long_lived.event_stream(send)
                    await long_lived.worker.opened(stream)

        try:
            await inner(scope, receive, send_and_note_status)
        except long_lived.Stopped:
            pass
        finally:
            if stream is not None:
                long_lived.worker.ended(stream)
            request.finish(streamed=stream is not None)

    return app
{%- endif %}


logs.stamp_request_ids()
# A Python warning is a log line too, in LOG_FORMAT, not a bare line on stderr.
logging.captureWarnings(True)
metrics.worker_started()
app = served(load_app(from_environment().app_module))
