"""The server layer in front of an ASGI app: in-process first (the liveness answer, the request id on
the app's own lines, the metrics, a stop's close frame), then under a real uvicorn started by
`pyserve serve`, where a stop must reach the WebSocket before the server's own stop does."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

import pyserve_runtime
from pyserve_runtime import logs, long_lived, served_asgi
from pyserve_runtime.settings import LIVENESS_PATH

GOING_AWAY = 1001

# The app under the layer, as a module a server can import: it echoes WebSocket messages, logs
# each request it serves and answers /hello (anything else: 404).
ECHO_APP = """
import logging

log = logging.getLogger("echo_app")


async def app(scope, receive, send):
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while (message := await receive())["type"] == "websocket.receive":
            await send({"type": "websocket.send", "text": message.get("text")})
        return
    if scope["type"] != "http":
        return
    log.info("serving %s", scope["path"])
    status = 200 if scope["path"] == "/hello" else 404
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"hello\\n"})
"""


@pytest.fixture
def echo_app() -> Any:
    namespace: dict[str, Any] = {}
    exec(compile(ECHO_APP, "echo_app.py", "exec"), namespace)
    return namespace["app"]


def http_scope(path: str, headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    return {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(), "query_string": b"",
            "headers": headers or [], "scheme": "http", "server": ("localhost", 80), "client": ("127.0.0.1", 50000),
            "root_path": "", "http_version": "1.1", "asgi": {"version": "3.0"}}  # fmt: skip


def get(app: Any, path: str, headers: list[tuple[bytes, bytes]] | None = None) -> tuple[int, bytes]:
    """One GET through `app`, in-process: its status and body."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(http_scope(path, headers), receive, send))
    return sent[0]["status"], b"".join(message.get("body", b"") for message in sent[1:])


def test_the_liveness_answer_is_the_layers_own(echo_app: Any) -> None:
    asked: list[str] = []

    async def recording(scope: dict[str, Any], receive: Any, send: Any) -> None:
        asked.append(scope["path"])
        await echo_app(scope, receive, send)

    served = served_asgi.served(recording)
    assert get(served, LIVENESS_PATH) == (200, b"alive\n")
    assert get(served, "/hello") == (200, b"hello\n")
    assert asked == ["/hello"]


def test_every_answer_of_the_app_says_its_release(echo_app: Any) -> None:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    served = served_asgi.served(echo_app, (("X-App-Version", "1.4.0"), ("X-App-Revision", "3f2c1ab")))
    asyncio.run(served(http_scope("/no/such/page"), receive, send))
    assert sent[0]["status"] == 404
    assert sent[0]["headers"] == [(b"content-type", b"text/plain"), (b"x-app-version", b"1.4.0"),
                                  (b"x-app-revision", b"3f2c1ab")]  # fmt: skip


def test_the_apps_own_lines_carry_the_request_id(echo_app: Any, caplog: pytest.LogCaptureFixture) -> None:
    logs.stamp_request_ids()
    caplog.set_level(logging.INFO)
    get(served_asgi.served(echo_app), "/hello", [(b"x-request-id", b"test-request-0001")])
    [line] = [record for record in caplog.records if record.name == "echo_app"]
    assert json.loads(logs.JsonFormatter().format(line))["request_id"] == "test-request-0001"


def test_each_request_is_counted_with_its_status(echo_app: Any) -> None:
    def answered(status: str) -> float:
        return REGISTRY.get_sample_value("app_request_duration_seconds_count", {"status": status}) or 0.0

    before = answered("200"), answered("404")
    served = served_asgi.served(echo_app)
    get(served, "/hello")
    get(served, "/no/such/page")
    assert (answered("200"), answered("404")) == (before[0] + 1, before[1] + 1)


def test_a_stop_closes_an_open_websocket_with_going_away(echo_app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a worker does when its server is told to stop (long_lived.py), before the server acts."""
    worker = long_lived.Worker()
    worker.stop_notice = lambda drain: None  # the stop comes from drain() below, not a signal
    monkeypatch.setattr(long_lived, "worker", worker)
    sent: list[dict[str, Any]] = []

    async def session() -> None:
        to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        echoed = asyncio.Event()

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)
            if message["type"] == "websocket.send":
                echoed.set()

        scope = {**http_scope("/ws"), "type": "websocket", "scheme": "ws", "subprotocols": []}
        for message in ({"type": "websocket.connect"}, {"type": "websocket.receive", "text": "hello"}):
            to_app.put_nowait(message)
        serving = asyncio.create_task(served_asgi.served(echo_app)(scope, to_app.get, send))
        await asyncio.wait_for(echoed.wait(), 5)
        await worker.drain()
        await asyncio.wait_for(serving, 5)

    asyncio.run(session())
    assert [message["type"] for message in sent] == ["websocket.accept", "websocket.send", "websocket.close"]
    assert sent[-1] == {"type": "websocket.close", "code": GOING_AWAY, "reason": "server stopping"}
    assert not worker.open


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def uvicorn_serving(project: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`pyserve serve` on 127.0.0.1 with uvicorn and two workers, serving echo_app; its base URL."""
    stack = project / "deploy" / "stack.toml"
    stack.write_text(
        stack.read_text().replace('interface = "wsgi"', 'interface = "asgi"').replace('"gunicorn"', '"uvicorn"')
    )
    (project / "echo_app.py").write_text(ECHO_APP)
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(Path(pyserve_runtime.__file__).parent.parent),
        **{"BIND": f"127.0.0.1:{port}", "APP_MODULE": "echo_app:app", "WEB_CONCURRENCY": "2"},
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "pyserve_runtime", "serve"], cwd=project, env=env, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(base + LIVENESS_PATH, timeout=2).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "pyserve serve did not start"
                time.sleep(0.2)
        yield server, base
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def test_under_uvicorn_a_stop_closes_websockets_with_going_away_then_the_server_exits(
    uvicorn_serving: tuple[subprocess.Popen[bytes], str],
) -> None:
    """uvicorn would send 1012 itself (measured): the layer's 1001 goes first."""
    server, base = uvicorn_serving
    with connect(base.replace("http", "ws") + "/ws", open_timeout=10) as websocket:
        websocket.send("hello")
        assert websocket.recv(timeout=5) == "hello"
        server.send_signal(signal.SIGTERM)
        with pytest.raises(ConnectionClosed) as closed:
            websocket.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == GOING_AWAY
    assert server.wait(timeout=20) == 0
