"""WebSockets and server-sent events on every ASGI stack, through nginx: they work, they stay open
while quiet, a thousand of them leave plain requests prompt, and a stop or a reload closes them
cleanly (close code 1001, a stream's last chunk) so that clients reconnect to a live worker.

REQUEST_TIMEOUT is 2 s here, so that "open longer than REQUEST_TIMEOUT" takes seconds.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from pyserve_template import records, settings
from pyserve_template.baking import free_port, project_venv

from .stack import (
    Stack,
    metric_samples,
    require_writable_cgroups,
    resident_memory,
    running_stack,
    wait_for,
)

pytestmark = pytest.mark.e2e

# One stack per ASGI server, and the frameworks whose WebSockets are their own (Django's through
# Channels, Litestar's and Quart's handlers).
STACKS = {
    "uvicorn": {"framework": "fastapi", "server": "uvicorn"},
    "gunicorn": {"framework": "fastapi", "server": "gunicorn"},
    "hypercorn": {"framework": "quart", "server": "hypercorn"},
    "granian": {"framework": "starlette", "server": "granian"},
    "django": {"framework": "django", "interface": "asgi"},
    "litestar": {"framework": "litestar"},
}
REQUEST_TIMEOUT_S = 2
ENV = {"REQUEST_TIMEOUT": str(REQUEST_TIMEOUT_S), "LOG_FORMAT": "json", "ACCESS_LOG": "1"}
GOING_AWAY = 1001
# The sample's first event is written at once; through a buffering proxy it would wait for more.
FIRST_EVENT_WITHIN_S = 1.5
MANY = 1000
# "Promptly", on a shared 2-core machine that also runs the 1000 clients: the slowest of 20.
PROMPT_S = {"/healthz": 0.5, "/api/io?ms=100": 0.6}
# How long a stop may take to close a WebSocket: at once, well within the graceful stop. A rolling
# reload replaces the workers one after another, so the last one's WebSockets close later, but
# within the graceful stop too.
CLOSED_WITHIN_S = 5
RELOAD_CLOSED_WITHIN_S = settings.GRACEFUL_STOP_S


async def connect(stack: Stack) -> ClientConnection:
    """/ws/echo through nginx, as a browser addressing localhost opens it (on 127.0.0.1)."""
    url = f"ws://localhost:{stack.http_port}/ws/echo"
    return await websockets.connect(url, host="127.0.0.1", open_timeout=30)


def access_line(stack: Stack, request_id: str) -> dict | None:
    """The app server's access line for a request or WebSocket (ACCESS_LOG=1), by its id."""
    for line in stack.written_lines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("logger") == "app.access" and record.get("request_id") == request_id:
                return record
    return None


def read_events(stack: Stack, count: int) -> tuple[float, list[bytes], bool]:
    """GET /api/events?n=count: when the first event came, the events, and whether the response
    ended cleanly (its last chunk, not a cut connection)."""
    connection = http.client.HTTPConnection("127.0.0.1", stack.http_port, timeout=30)
    started = time.monotonic()
    try:
        # Connection: close, so that the body ends where the connection does, cut or not: a clean
        # end is the chunked encoding's last chunk, read raw below.
        connection.request("GET", f"/api/events?n={count}", headers={"Host": "localhost", "Connection": "close"})
        response = connection.getresponse()
        assert response.status == 200, response.status
        assert response.headers["Content-Type"].startswith("text/event-stream")
        first = response.fp.readline()  # the chunk size line of the first event
        first_at = time.monotonic() - started
        body = first + b"".join(iter(lambda: response.fp.readline(), b""))
    finally:
        connection.close()
    return first_at, re.findall(rb"^id: \d+$", body, re.MULTILINE), body.endswith(b"\r\n0\r\n\r\n")


@pytest.fixture(scope="module", params=list(STACKS))
def project(request: pytest.FixtureRequest, bake_to_run) -> Path:
    return bake_to_run(**STACKS[request.param])


@pytest.fixture(scope="module")
def stack(project: Path) -> Iterator[Stack]:
    """The app server confined to the answers' 1 CPU and 512 MiB (make local CONFINE=1), as in its container."""
    venv = project_venv(project)
    require_writable_cgroups(project, venv)
    with running_stack(project, venv, {**ENV, "METRICS_PORT": str(free_port())}, ("CONFINE=1",)) as running:
        yield running


def metrics(stack: Stack) -> dict[str, float]:
    """The samples of the stack's metrics endpoint (the port make local printed)."""
    return metric_samples(int(re.search(r"metrics on :(\d+)/metrics", stack.output()).group(1)))


def test_a_websocket_echoes_text_and_bytes_through_nginx(stack: Stack) -> None:
    async def round_trip() -> tuple[str, bytes, str]:
        async with await connect(stack) as websocket:
            await websocket.send("hello")
            text = await websocket.recv()
            await websocket.send(b"\x00\x01\xff")
            data = await websocket.recv()
            return text, data, websocket.response.headers.get("X-Request-ID", "")

    text, data, request_id = asyncio.run(round_trip())
    assert (text, data) == ("hello", b"\x00\x01\xff")
    assert len(request_id) == 32, "nginx's id on the upgrade's answer"
    wait_for(lambda: access_line(stack, request_id) is not None, 10, f"the app server's line for {request_id}")
    assert access_line(stack, request_id)["pid"] in stack.worker_pids()


def test_a_quiet_websocket_outlives_request_timeout(stack: Stack) -> None:
    async def quiet() -> str:
        async with await connect(stack) as websocket:
            await asyncio.sleep(REQUEST_TIMEOUT_S * 3)
            await websocket.send("still here")
            return await asyncio.wait_for(websocket.recv(), 5)

    assert asyncio.run(quiet()) == "still here"


def test_the_first_event_arrives_at_once_and_the_stream_ends_cleanly(stack: Stack) -> None:
    first_at, events, clean = read_events(stack, 3)
    assert first_at < FIRST_EVENT_WITHIN_S, f"first event after {first_at:.2f} s: buffered"
    assert events == [b"id: 0", b"id: 1", b"id: 2"]
    assert clean, "the stream was cut instead of ended"


def test_a_thousand_open_websockets_leave_plain_requests_prompt(stack: Stack, project: Path) -> None:
    workers = stack.worker_pids()
    memory_before = sum(resident_memory(pid) for pid in workers)

    async def hold_many() -> dict[str, float]:
        websockets_open: list[ClientConnection] = []
        try:
            for _ in range(MANY // 100):
                websockets_open += await asyncio.gather(*(connect(stack) for _ in range(100)))
            slowest = {}
            for path in PROMPT_S:
                times = [(await asyncio.to_thread(stack.get, path)).seconds for _ in range(20)]
                slowest[path] = max(times)
            await asyncio.gather(*(websocket.send("ping") for websocket in websockets_open))
            answers = await asyncio.gather(*(asyncio.wait_for(websocket.recv(), 30) for websocket in websockets_open))
            assert answers == ["ping"] * MANY
            slowest["memory"] = sum(resident_memory(pid) for pid in workers) - memory_before
            slowest["open"] = metrics(stack)['app_long_lived_open{kind="websocket"}']  # all held
            return slowest
        finally:
            await asyncio.gather(*(websocket.close() for websocket in websockets_open), return_exceptions=True)

    measured = asyncio.run(hold_many())
    assert measured["open"] == MANY, "the metrics count every open WebSocket"
    open_now = 'app_long_lived_open{kind="websocket"}'
    wait_for(lambda: metrics(stack)[open_now] == 0, 10, "no WebSocket counted once all are closed")
    assert metrics(stack)["app_plan_long_lived_connections"] == stack.plan()["long_lived_connections"]
    for path, limit in PROMPT_S.items():
        assert measured[path] < limit, f"{path}: {measured[path]:.3f} s with {MANY} WebSockets open"
    server = stack.plan()["server"]
    allowed = MANY * records.SERVERS[server].connection_kib * 1024
    assert measured["memory"] <= allowed, f"{MANY} WebSockets took {measured['memory'] / 2**20:.0f} MiB in {server}"


def test_each_worker_may_open_the_files_its_websockets_need(stack: Stack) -> None:
    plan = stack.plan()
    needed = 1024 + plan["long_lived_connections"]
    for pid in stack.worker_pids():
        limits = Path(f"/proc/{pid}/limits").read_text()
        soft = int(next(line for line in limits.splitlines() if line.startswith("Max open files")).split()[3])
        assert soft >= needed, f"worker {pid}: {soft} open files, the plan needs {needed}"


def open_echoing(loop: asyncio.AbstractEventLoop, stack: Stack) -> tuple[ClientConnection, str]:
    """A WebSocket whose first echo came back, and its request id, on a loop the caller keeps."""

    async def opened() -> ClientConnection:
        websocket = await connect(stack)
        await websocket.send("hello")
        assert await websocket.recv() == "hello"
        return websocket

    websocket = loop.run_until_complete(opened())
    return websocket, websocket.response.headers["X-Request-ID"]


def closed_code(
    loop: asyncio.AbstractEventLoop, websocket: ClientConnection, within_s: float = CLOSED_WITHIN_S
) -> tuple[int | None, float]:
    """Wait for the server to close the WebSocket: its close code, and how long that took."""
    started = time.monotonic()

    async def wait_closed() -> int | None:
        try:
            await asyncio.wait_for(websocket.recv(), within_s + 5)
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
        raise AssertionError("the WebSocket got a message instead of its close")

    return loop.run_until_complete(wait_closed()), time.monotonic() - started


def test_a_stop_closes_websockets_with_going_away_and_ends_streams_cleanly(project: Path) -> None:
    loop = asyncio.new_event_loop()
    events: dict[str, object] = {}

    def read_a_long_stream() -> None:
        events["first_at"], events["ids"], events["clean"] = read_events(stack, 60)

    with running_stack(project, project_venv(project), ENV) as stack:
        websocket, _ = open_echoing(loop, stack)
        reading = loop.run_in_executor(None, read_a_long_stream)
        time.sleep(2.5)  # the stream has sent a few events
        stack.stop()
        code, took = closed_code(loop, websocket)
        loop.run_until_complete(asyncio.wait_for(reading, 30))
    loop.close()
    assert code == GOING_AWAY, f"close code {code}"
    assert took < CLOSED_WITHIN_S, f"closed after {took:.1f} s"
    assert events["clean"], "the event stream was cut instead of ended"
    assert 2 <= len(events["ids"]) < 60, events["ids"]


def test_a_reload_closes_websockets_with_going_away_and_a_reconnect_lands_on_a_new_worker(
    project: Path,
) -> None:
    loop = asyncio.new_event_loop()
    with running_stack(project, project_venv(project), ENV) as stack:
        old_workers = set(stack.worker_pids())
        websocket, old_id = open_echoing(loop, stack)
        os.kill(stack.server_pid, signal.SIGHUP)
        code, took = closed_code(loop, websocket, RELOAD_CLOSED_WITHIN_S)
        wait_for(lambda: not old_workers & set(stack.worker_pids()), 30, "every worker replaced")
        reconnected, new_id = open_echoing(loop, stack)
        loop.run_until_complete(reconnected.close())
        wait_for(lambda: access_line(stack, new_id) is not None, 10, "the new WebSocket's access line")
        old_pid = access_line(stack, old_id)["pid"]
        new_pid = access_line(stack, new_id)["pid"]
    loop.close()
    assert code == GOING_AWAY, f"close code {code}"
    assert took < RELOAD_CLOSED_WITHIN_S, f"closed after {took:.1f} s"
    assert old_pid in old_workers and new_pid not in old_workers
