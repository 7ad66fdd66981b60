"""The server layer in front of a WSGI app (served_app.py): the liveness answer, and each
request's id, metrics and access line, finished when the server closes the response body."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .served_request import ServedRequest
from .settings import LIVENESS_PATH

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

        body.close = close_and_finish  # type: ignore[attr-defined]  # the file wrapper has one
        return body
    return ClosingBody(body, finish)


def served(inner: WSGIApp, headers: tuple[tuple[str, str], ...] = ()) -> WSGIApp:
    """`inner` with the server layer in front; `headers` added to each of its answers."""
    added = list(headers)

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
            write: Callable[..., Any] = start_response(status, [*headers, *added], exc_info)
            return write

        try:
            body = inner(environ, start)
        except BaseException:
            request.finish()
            raise
        return finished_on_close(body, environ, request.finish)

    return app
