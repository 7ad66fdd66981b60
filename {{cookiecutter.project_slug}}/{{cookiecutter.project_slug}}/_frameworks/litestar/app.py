"""The sample Litestar app (ASGI). Replace it with yours: APP_MODULE points the server at it."""

from __future__ import annotations

import asyncio
from typing import Annotated

from litestar import Litestar, MediaType, Request, {% if cookiecutter.database != "none" %}Response, {% endif %}WebSocket, get, route, websocket
from litestar.params import Parameter
from litestar.response import Stream

from . import {% if cookiecutter.database != "none" %}database, {% endif %}site
{%- if cookiecutter.static_strategy == "whitenoise" %}
from .static_files import serve_static
{%- endif %}

Ms = Annotated[int, Parameter(ge=0, le=site.MAX_MS)]
Events = Annotated[int, Parameter(ge=1, le=site.MAX_EVENTS)]


@get("/", media_type=MediaType.HTML)
async def index() -> str:
    return site.index_html()


@get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/api/io")
async def api_io(ms: Ms = site.DEFAULT_MS) -> dict[str, int]:
    await asyncio.sleep(ms / 1000)  # stands for an awaited database or HTTP call
    return {"waited_ms": ms}


@route("/api/request", http_method=["GET", "POST"], status_code=200)
async def api_request(request: Request) -> dict[str, str | None]:
    client = request.client.host if request.client else None
    return site.request_seen(request.url.scheme, request.url.netloc, client, str(request.url))


@get("/api/cpu")
async def api_cpu(ms: Ms = site.DEFAULT_MS) -> dict[str, int]:
    # CPU work holds the GIL wherever it runs; running it inline is honest about that.
    return site.burn_cpu(ms)


@get("/api/events")
async def api_events(n: Events = site.DEFAULT_EVENTS) -> Stream:
    return Stream(site.event_stream(n), media_type=site.EVENT_STREAM_TYPE, headers=site.EVENT_STREAM_HEADERS)


@websocket("/ws/echo")
async def ws_echo(socket: WebSocket) -> None:
    await socket.accept()
    while True:
        message = await socket.receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await socket.send_data(message["text"], mode="text")
        else:
            await socket.send_data(message["bytes"], mode="binary")
{%- if cookiecutter.database != "none" %}


@get("/api/db")
async def api_db(ms: Ms = site.DEFAULT_MS) -> dict[str, int]:
    number = await database.visit(ms)  # a query through this worker's pool
    return {"db_ms": ms, "visit": number}


@get("/readyz")
async def readyz() -> Response[dict[str, str]]:
    # Readiness, not liveness: a database outage takes the pod out of the Service, it does not restart it.
    if await database.ready():
        return Response({"database": "ok"})
    return Response({"database": "unavailable"}, status_code=503)


# logging_config=None: the server configures logging (pyserve_runtime.logs: LOG_FORMAT, LOG_LEVEL and the
# request id on every line); Litestar's own would replace the root logger's handler.
app = Litestar(
    route_handlers=[index, healthz, api_io, api_request, api_cpu, api_events, ws_echo, api_db, readyz],
    openapi_config=None,
    logging_config=None,
    lifespan=[database.lifespan],
)
{%- else %}


# logging_config=None: the server configures logging (pyserve_runtime.logs: LOG_FORMAT, LOG_LEVEL and the
# request id on every line); Litestar's own would replace the root logger's handler.
app = Litestar(
    route_handlers=[index, healthz, api_io, api_request, api_cpu, api_events, ws_echo],
    openapi_config=None,
    logging_config=None,
)
{%- endif %}
{%- if cookiecutter.static_strategy == "whitenoise" %}


# static_strategy=whitenoise: the app answers /static/ itself (see static_files.py).
app = serve_static(app)
{%- endif %}
