"""The server layer in front of a WSGI app, on a real socket (the stdlib's WSGI server on 127.0.0.1):
the liveness answer never reaches the app; every other request does, with its request id on the
app's own lines, and is counted by its status."""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from prometheus_client import REGISTRY

from pyserve_runtime import logs, served_wsgi
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
        logging.getLogger("wsgi_app").info("serving %s", environ["PATH_INFO"])
        found = environ["PATH_INFO"] == "/hello"
        start_response("200 OK" if found else "404 Not Found", [("Content-Type", "text/plain")])
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


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_the_liveness_answer_is_the_layers_own(served: tuple[str, list[str]]) -> None:
    base, asked = served
    assert get(base + LIVENESS_PATH) == (200, b"alive\n")
    assert asked == []


def test_every_other_request_reaches_the_app(served: tuple[str, list[str]]) -> None:
    base, asked = served
    assert get(base + "/hello") == (200, b"hello\n")
    assert asked == ["/hello"]


def test_the_apps_own_lines_carry_the_request_id(
    served: tuple[str, list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    logs.stamp_request_ids()
    caplog.set_level(logging.INFO)
    get(served[0] + "/hello", {"X-Request-ID": "test-request-0001"})
    [line] = [record for record in caplog.records if record.name == "wsgi_app"]
    assert json.loads(logs.JsonFormatter().format(line))["request_id"] == "test-request-0001"


def test_each_request_is_counted_with_its_status(served: tuple[str, list[str]]) -> None:
    def answered(status: str) -> float:
        return REGISTRY.get_sample_value("app_request_duration_seconds_count", {"status": status}) or 0.0

    before = answered("200"), answered("404")
    assert get(served[0] + "/hello")[0] == 200
    assert get(served[0] + "/no/such/page")[0] == 404
    assert (answered("200"), answered("404")) == (before[0] + 1, before[1] + 1)


def test_every_answer_of_the_app_says_its_release_and_the_liveness_answer_does_not() -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hello\n"]

    release = (("X-App-Version", "1.4.0"), ("X-App-Revision", "3f2c1ab"))
    server = make_server("127.0.0.1", 0, served_wsgi.served(app, release), handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        with urllib.request.urlopen(base + "/hello", timeout=5) as response:
            assert (response.headers["X-App-Version"], response.headers["X-App-Revision"]) == ("1.4.0", "3f2c1ab")
            assert response.headers["Content-Type"] == "text/plain"
        with urllib.request.urlopen(base + LIVENESS_PATH, timeout=5) as response:
            assert response.headers["X-App-Version"] is None
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
