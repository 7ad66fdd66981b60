"""The sample Quart app (ASGI). Replace it with yours: APP_MODULE points the server at it."""

from __future__ import annotations

import asyncio
{%- if cookiecutter.database != "none" %}
from collections.abc import AsyncIterator
{%- endif %}

from quart import Quart, Response, abort, jsonify, request, websocket

from . import {% if cookiecutter.database != "none" %}database, {% endif %}site
{%- if cookiecutter.static_strategy == "whitenoise" %}
from .static_files import serve_static
{%- endif %}

# Static files are not Quart's job here: nginx, ServeStatic or a CDN serves /static/.
app = Quart(__name__, static_folder=None)


def requested_ms() -> int:
    try:
        return site.duration_ms(request.args.get("ms"))
    except ValueError:
        abort(400)


@app.get("/")
async def index() -> Response:
    return Response(site.index_html(), mimetype="text/html")


@app.get("/healthz")
async def healthz() -> Response:
    return jsonify(status="ok")


@app.get("/api/io")
async def api_io() -> Response:
    ms = requested_ms()
    await asyncio.sleep(ms / 1000)  # stands for an awaited database or HTTP call
    return jsonify(waited_ms=ms)


@app.route("/api/request", methods=["GET", "POST"])
async def api_request() -> Response:
    return jsonify(site.request_seen(request.scheme, request.host, request.remote_addr, request.url))


@app.get("/api/cpu")
async def api_cpu() -> Response:
    # CPU work holds the GIL wherever it runs; running it inline is honest about that.
    return jsonify(site.burn_cpu(requested_ms()))


@app.get("/api/events")
async def api_events() -> Response:
    try:
        count = site.event_count(request.args.get("n"))
    except ValueError:
        abort(400)
    response = Response(site.event_stream(count), mimetype=site.EVENT_STREAM_TYPE, headers=site.EVENT_STREAM_HEADERS)
    # Quart ends a response after RESPONSE_TIMEOUT (60 s); a stream lasts as long as it has events.
    response.timeout = None
    return response


@app.websocket("/ws/echo")
async def ws_echo() -> None:
    while True:
        await websocket.send(await websocket.receive())
{%- if cookiecutter.database != "none" %}


@app.while_serving
async def database_pool() -> AsyncIterator[None]:
    async with database.lifespan():  # this worker's pool, for as long as it serves
        yield


@app.get("/api/db")
async def api_db() -> Response:
    ms = requested_ms()
    number = await database.visit(ms)  # a query through this worker's pool
    return jsonify(db_ms=ms, visit=number)


@app.get("/readyz")
async def readyz() -> tuple[Response, int]:
    # Readiness, not liveness: a database outage takes the pod out of the Service, it does not restart it.
    if await database.ready():
        return jsonify(database="ok"), 200
    return jsonify(database="unavailable"), 503
{%- endif %}
{%- if cookiecutter.static_strategy == "whitenoise" %}


# static_strategy=whitenoise: the app answers /static/ itself (see static_files.py).
app = serve_static(app)
{%- endif %}
