"""The server layer in front of a WSGI app, on a real socket (the stdlib's WSGI server on 127.0.0.1):
the liveness answer never reaches the app, and every other request does."""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from pyserve_runtime import served_wsgi
from pyserve_runtime.settings import LIVENESS_PATH


class Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # the stdlib's name for it
        pass


@pytest.fixture
def served() -> Iterator[tuple[str, list[str]]]:
    """The served layer over an app that records the paths it is asked for; its base URL and that record."""
    asked: list[str] = []

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        asked.append(environ["PATH_INFO"])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hello\n"]

    server = make_server("127.0.0.1", 0, served_wsgi.served(app), handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", asked
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read()


def test_the_liveness_answer_is_the_layers_own(served: tuple[str, list[str]]) -> None:
    base, asked = served
    assert get(base + LIVENESS_PATH) == (200, b"alive\n")
    assert asked == []


def test_every_other_request_reaches_the_app(served: tuple[str, list[str]]) -> None:
    base, asked = served
    assert get(base + "/hello") == (200, b"hello\n")
    assert asked == ["/hello"]
