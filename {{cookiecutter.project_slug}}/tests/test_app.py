"""The sample app answers what nginx, the healthchecks and the load test expect (`make test`).

The app is loaded as the server loads it (APP_MODULE, else deploy/stack.toml) and called in-process
through its {{ cookiecutter.__interface | upper }} interface, with no server in between; last, the same app with the
server layer every server runs in front of it (deploy/served_app.py).
"""

from __future__ import annotations

{% if cookiecutter.__interface == "asgi" -%}
import asyncio
{% endif -%}
import importlib
import json
import logging
import os
{% if cookiecutter.static_strategy != "none" -%}
import subprocess
{% endif -%}
{% if cookiecutter.static_strategy != "none" -%}
import sys
{% endif -%}
import time

import httpx
import pytest
from prometheus_client import REGISTRY

from deploy import logs, settings
from deploy.serve import load_app


@pytest.fixture(scope="session")
def app(tmp_path_factory: pytest.TempPathFactory) -> object:
    os.environ["STATIC_ROOT"] = str(tmp_path_factory.mktemp("collected") / "static")
{%- if cookiecutter.framework == "django" %}
    os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only")
{%- endif %}
{%- if cookiecutter.static_strategy != "none" %}
    subprocess.run(
        [sys.executable, "-m", "deploy.collect_static"], cwd=settings.PROJECT, check=True, capture_output=True
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


@pytest.fixture(scope="session")
def served(app: object) -> object:
    """The app as every server runs it: deploy/served_app.py in front of it."""
    return importlib.import_module("deploy.served_app").app


def test_liveness_is_the_server_layers_answer(served: object) -> None:
    response = get(served, settings.LIVENESS_PATH)
    assert response.status_code == 200 and response.text == "alive\n"


def test_the_apps_own_log_lines_carry_the_request_id(served: object, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    response = get(served, "/api/cpu?ms=1", headers={"X-Request-ID": "test-request-0001"})
    assert response.status_code == 200
    app_lines = [record for record in caplog.records if record.name.endswith(".site")]
    assert app_lines, [record.name for record in caplog.records]
    line = json.loads(logs.JsonFormatter().format(app_lines[0]))
    assert line["request_id"] == "test-request-0001" and line["level"] == "debug"


def test_each_request_is_counted_with_its_status(served: object) -> None:
    def answered(status: str) -> float:
        return REGISTRY.get_sample_value("app_request_duration_seconds_count", {"status": status}) or 0.0

    before = answered("200"), answered("404")
    get(served, "/healthz")
    get(served, "/no/such/page")
    assert (answered("200"), answered("404")) == (before[0] + 1, before[1] + 1)
