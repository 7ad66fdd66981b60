"""The sample Starlette app (ASGI). Replace it with yours: APP_MODULE points the server at it."""

from __future__ import annotations

import asyncio

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from . import {% if cookiecutter.database != "none" %}database, {% endif %}site
{%- if cookiecutter.static_strategy == "whitenoise" %}
from .static_files import serve_static
{%- endif %}


def requested_ms(request: Request) -> int:
    try:
        return site.duration_ms(request.query_params.get("ms"))
    except ValueError:
        raise HTTPException(400) from None


async def index(request: Request) -> HTMLResponse:
    return HTMLResponse(site.index_html())


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def api_io(request: Request) -> JSONResponse:
    ms = requested_ms(request)
    await asyncio.sleep(ms / 1000)  # stands for an awaited database or HTTP call
    return JSONResponse({"waited_ms": ms})


async def api_request(request: Request) -> JSONResponse:
    client = request.client.host if request.client else None
    return JSONResponse(site.request_seen(request.url.scheme, request.url.netloc, client, str(request.url)))


async def api_cpu(request: Request) -> JSONResponse:
    # CPU work holds the GIL wherever it runs; running it inline is honest about that.
    return JSONResponse(site.burn_cpu(requested_ms(request)))


async def api_events(request: Request) -> StreamingResponse:
    try:
        count = site.event_count(request.query_params.get("n"))
    except ValueError:
        raise HTTPException(400) from None
    stream = site.event_stream(count)
    return StreamingResponse(stream, media_type=site.EVENT_STREAM_TYPE, headers=site.EVENT_STREAM_HEADERS)


async def ws_echo(websocket: WebSocket) -> None:
    await websocket.accept()
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await websocket.send_text(message["text"])
        else:
            await websocket.send_bytes(message["bytes"])
{%- if cookiecutter.database != "none" %}


async def api_db(request: Request) -> JSONResponse:
    ms = requested_ms(request)
    number = await database.visit(ms)  # a query through this worker's pool
    return JSONResponse({"db_ms": ms, "visit": number})


async def readyz(request: Request) -> JSONResponse:
    # Readiness, not liveness: a database outage takes the pod out of the Service, it does not restart it.
    if await database.ready():
        return JSONResponse({"database": "ok"})
    return JSONResponse({"database": "unavailable"}, status_code=503)
{%- endif %}


app = Starlette(
    routes=[
        Route("/", index),
        Route("/healthz", healthz),
        Route("/api/io", api_io),
        Route("/api/cpu", api_cpu),
        Route("/api/request", api_request, methods=["GET", "POST"]),
        Route("/api/events", api_events),
        WebSocketRoute("/ws/echo", ws_echo),{%- if cookiecutter.database != "none" %}
        Route("/api/db", api_db),
        Route("/readyz", readyz),
    ],
    lifespan=database.lifespan,
{%- else %}
    ]
{%- endif %}
)
{%- if cookiecutter.static_strategy == "whitenoise" %}


# static_strategy=whitenoise: the app answers /static/ itself (see static_files.py).
app = serve_static(app)
{%- endif %}
