"""The sample app answers what nginx, the healthchecks and the load test expect (`make test`).

The app is loaded as the server loads it (APP_MODULE, else deploy/stack.toml) and called in-process
through its {{ cookiecutter.__interface | upper }} interface, with no server in between. What the runtime adds in front
of it (the liveness answer, request ids, metrics, a stop's close frames) is tested in the runtime.
"""

from __future__ import annotations

{% if cookiecutter.__interface == "asgi" -%}
import asyncio
{% endif -%}
import os
{% if cookiecutter.static_strategy != "none" -%}
import subprocess
import sys
{% endif -%}
import time

import httpx
import pytest
from pyserve_runtime import settings
from pyserve_runtime.serve import load_app


@pytest.fixture(scope="session")
def app(tmp_path_factory: pytest.TempPathFactory) -> object:
    os.environ["STATIC_ROOT"] = str(tmp_path_factory.mktemp("collected") / "static")
{%- if cookiecutter.framework == "django" %}
    os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only")
{%- endif %}
{%- if cookiecutter.static_strategy != "none" %}
    subprocess.run(
        [sys.executable, "-m", "pyserve_runtime", "static"], cwd=settings.PROJECT, check=True, capture_output=True
    )
{%- endif %}
    return load_app(settings.from_environment().app_module)


def get(app: object, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
{%- if cookiecutter.__interface == "asgi" %}

    async def fetch() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            return await client.get(path, headers=headers)

    return asyncio.run(fetch())
{%- else %}
    transport = httpx.WSGITransport(app=app)  # type: ignore[arg-type]
    with httpx.Client(transport=transport, base_url="http://localhost") as client:
        return client.get(path, headers=headers)
{%- endif %}


def test_page(app: object) -> None:
    response = get(app, "/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
{%- if cookiecutter.static_strategy != "none" %}
    # Assets are linked by content-hashed names, which nginx, the app or a CDN may cache for a year.
    assert "/css/site." in response.text and ".css" in response.text
    assert "/css/site.css" not in response.text
{%- endif %}


def test_healthz(app: object) -> None:
    response = get(app, "/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_api_io_waits(app: object) -> None:
    started = time.monotonic()
    response = get(app, "/api/io?ms=30")
    assert response.status_code == 200 and response.json() == {"waited_ms": 30}
    assert time.monotonic() - started >= 0.03


def test_api_cpu_burns(app: object) -> None:
    response = get(app, "/api/cpu?ms=5")
    assert response.status_code == 200 and response.json()["cpu_ms"] == 5


@pytest.mark.parametrize("ms", ["-1", "10001", "soon"])
def test_out_of_range_durations_are_refused(app: object, ms: str) -> None:
    assert get(app, f"/api/io?ms={ms}").status_code in {400, 422}
{%- if cookiecutter.__interface == "asgi" %}


def test_api_events_streams_server_sent_events(app: object) -> None:
    response = get(app, "/api/events?n=2")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-accel-buffering"] == "no"
    assert [line for line in response.text.splitlines() if line.startswith("id: ")] == ["id: 0", "id: 1"]


async def websocket_session(app: object, path: str) -> list[dict]:
    """A WebSocket to the app, in-process: connect, send "hello", wait for the echo, close; what the
    app sent, in order."""
    to_app: asyncio.Queue[dict] = asyncio.Queue()
    sent: list[dict] = []
    echoed = asyncio.Event()

    async def send(message: dict) -> None:
        sent.append(message)
        if message["type"] == "websocket.send":
            echoed.set()

    scope = {"type": "websocket", "path": path, "raw_path": path.encode(), "query_string": b"", "headers": [],
             "scheme": "ws", "server": ("localhost", 80), "client": ("127.0.0.1", 50000), "root_path": "",
             "subprotocols": [], "asgi": {"version": "3.0"}}  # fmt: skip
    await to_app.put({"type": "websocket.connect"})
    await to_app.put({"type": "websocket.receive", "text": "hello"})
    session = asyncio.create_task(app(scope, to_app.get, send))  # type: ignore[operator]
    await asyncio.wait_for(echoed.wait(), 5)
    await to_app.put({"type": "websocket.disconnect", "code": 1000})
    await asyncio.wait_for(session, 5)
    return sent


def test_ws_echo_sends_each_message_back(app: object) -> None:
    sent = asyncio.run(websocket_session(app, "/ws/echo"))
    assert sent[0]["type"] == "websocket.accept"
    assert {"type": "websocket.send", "text": "hello"}.items() <= sent[1].items()
{%- endif %}
