"""The sample FastAPI app (ASGI). Replace it with yours: APP_MODULE points the server at it."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI, Query, Request, WebSocket
from fastapi.responses import HTMLResponse, {% if cookiecutter.database != "none" %}JSONResponse, {% endif %}StreamingResponse

from . import {% if cookiecutter.database != "none" %}database, {% endif %}site
{%- if cookiecutter.static_strategy == "whitenoise" %}
from .static_files import serve_static
{%- endif %}

app = FastAPI(
    title="sample",
    docs_url=None,
    redoc_url=None,
    openapi_url=None,{%- if cookiecutter.database != "none" %}
    lifespan=database.lifespan,{%- endif %}
)

MsQuery = Query(site.DEFAULT_MS, ge=0, le=site.MAX_MS)
EventsQuery = Query(site.DEFAULT_EVENTS, ge=1, le=site.MAX_EVENTS)


@app.get("/", response_class=HTMLResponse)
async def index() -> str:
    return site.index_html()


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/api/io")
async def api_io(ms: int = MsQuery) -> dict[str, int]:
    await asyncio.sleep(ms / 1000)  # stands for an awaited database or HTTP call
    return {"waited_ms": ms}


@app.api_route("/api/request", methods=["GET", "POST"])
async def api_request(request: Request) -> dict[str, str | None]:
    client = request.client.host if request.client else None
    return site.request_seen(request.url.scheme, request.url.netloc, client, str(request.url))


@app.get("/api/cpu")
async def api_cpu(ms: int = MsQuery) -> dict[str, int]:
    # CPU work holds the GIL wherever it runs; running it inline is honest about that.
    return site.burn_cpu(ms)


@app.get("/api/events")
async def api_events(n: int = EventsQuery) -> StreamingResponse:
    stream = site.event_stream(n)
    return StreamingResponse(stream, media_type=site.EVENT_STREAM_TYPE, headers=site.EVENT_STREAM_HEADERS)


@app.websocket("/ws/echo")
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


@app.get("/api/db")
async def api_db(ms: int = MsQuery) -> dict[str, int]:
    number = await database.visit(ms)  # a query through this worker's pool
    return {"db_ms": ms, "visit": number}


@app.get("/readyz")
async def readyz() -> JSONResponse:
    # Readiness, not liveness: a database outage takes the pod out of the Service, it does not restart it.
    if await database.ready():
        return JSONResponse({"database": "ok"})
    return JSONResponse({"database": "unavailable"}, status_code=503)
{%- endif %}
{%- if cookiecutter.static_strategy == "whitenoise" %}


# static_strategy=whitenoise: the app answers /static/ itself (see static_files.py).
app = serve_static(app)
{%- endif %}
