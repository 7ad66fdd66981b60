"""The server layer in front of an ASGI app (served_app.py): the liveness answer, each
request's id, metrics and access line, and WebSockets and event streams, which are long-lived: when
the worker is told to stop, they are closed cleanly before the server acts (long_lived.py)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from . import logs, long_lived
from .served_request import ServedRequest, access_log
from .settings import LIVENESS_PATH

ASGIApp = Callable[[dict[str, Any], Callable[..., Awaitable[Any]], Callable[..., Awaitable[None]]], Awaitable[None]]


def header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def client_address(scope: dict[str, Any]) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


async def serve_websocket(
    inner: ASGIApp, scope: dict[str, Any], receive: Callable[..., Awaitable[Any]], send: Callable[..., Awaitable[None]]
) -> None:
    """A WebSocket: its request id on the app's lines, and a close with 1001 when the worker stops."""
    logs.request_id.set(header(scope, b"x-request-id") or uuid.uuid4().hex)
    connection = long_lived.websocket(send, receive)
    started = time.monotonic()
    close_code: int | None = None

    async def send_and_track(message: dict[str, Any]) -> None:
        nonlocal close_code
        await connection.send(message)
        if message["type"] == "websocket.accept":
            await long_lived.worker.opened(connection)
        elif message["type"] == "websocket.close":
            close_code = message.get("code", 1000)
            long_lived.worker.ended(connection)

    try:
        await inner(scope, connection.receive, send_and_track)
    except long_lived.Stopped:
        pass
    finally:
        await connection.farewell_written()
        long_lived.worker.ended(connection)
        if connection.closed_for_stop:
            close_code = long_lived.GOING_AWAY
        if access_log.isEnabledFor(logging.INFO):
            duration_ms = round((time.monotonic() - started) * 1000, 3)
            access_log.info(
                "WEBSOCKET %s %s", scope["path"], close_code,
                extra={
                    "method": "WEBSOCKET", "path": scope["path"], "status": close_code,
                    "client": client_address(scope), "duration_ms": duration_ms,
                },
            )  # fmt: skip
        logs.request_id.set(None)


def served(inner: ASGIApp, headers: tuple[tuple[str, str], ...] = ()) -> ASGIApp:
    """`inner` with the server layer in front; `headers` added to each of its HTTP answers."""
    added = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]

    async def app(
        scope: dict[str, Any], receive: Callable[..., Awaitable[Any]], send: Callable[..., Awaitable[None]]
    ) -> None:
        if scope["type"] == "websocket":
            await serve_websocket(inner, scope, receive, send)
            return
        if scope["type"] != "http":  # lifespan
            await inner(scope, receive, send)
            return
        if scope["path"] == LIVENESS_PATH:
            headers = [(b"content-type", b"text/plain"), (b"content-length", b"6")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b"alive\n"})
            return
        request = ServedRequest(
            scope["method"],
            scope["path"],
            client_address(scope),
            header(scope, b"x-request-id"),
            header(scope, b"x-request-start"),
        )
        stream: long_lived.LongLived | None = None

        async def send_and_note_status(message: dict[str, Any]) -> None:
            nonlocal stream
            if stream is not None:
                await stream.send(message)
                if not message.get("more_body", False):
                    long_lived.worker.ended(stream)
                return
            if message["type"] == "http.response.start" and added:
                message = {**message, "headers": [*message.get("headers", ()), *added]}
            await send(message)
            if message["type"] == "http.response.start":
                request.status = message["status"]
                if long_lived.is_event_stream(message):
                    stream = long_lived.event_stream(send)
                    await long_lived.worker.opened(stream)

        try:
            await inner(scope, receive, send_and_note_status)
        except long_lived.Stopped:
            pass
        finally:
            if stream is not None:
                long_lived.worker.ended(stream)
            request.finish(streamed=stream is not None)

    return app
