"""WebSockets and server-sent event streams: closed cleanly, and first, when a worker is told to stop.

No server here tells the app it is stopping before it cuts these connections. With a WebSocket and
an event stream open and SIGTERM sent to the server (measured, December 2026): uvicorn, and
gunicorn's uvicorn worker, send close code 1012 at once and cut the stream mid-response; granian
drops both without a close frame; hypercorn waits out its graceful timeout, then sends 1011 and
cuts the stream. So each worker closes them itself, the moment it is told to stop and before its
server acts on it:

- every WebSocket gets a close frame with code 1001, "going away", on which a client reconnects, to
  another worker or replica;
- every event stream (Content-Type text/event-stream) gets its last chunk: the response ends at an
  event's boundary, and a browser's EventSource reconnects with the Last-Event-ID it saw.

The app's handler for such a connection then ends: a WebSocket's receive() gets the disconnect, and
its next send() (a stream's next event) raises `Stopped`, which served_app.py catches. Then
the server's own stop goes on. Each server's files say how it tells a worker to stop (`stop_notice`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from . import metrics

log = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]

GOING_AWAY = 1001
# The longest a stop waits for the close frames and last chunks to be written (a client that reads
# nothing can hold a write up): past it, the server's own stop goes on regardless.
DRAIN_TIMEOUT_S = 5.0
EVENT_STREAM = b"text/event-stream"
# What the app's receive() gets on a WebSocket closed for the stop.
GONE = {"type": "websocket.disconnect", "code": GOING_AWAY}


class Stopped(Exception):
    """The app sent on a connection this worker has closed for its stop; its handler ends here."""


class LongLived:
    """One WebSocket or event stream: every send goes through it, so that a stop can write the
    last message between two of the app's."""

    def __init__(self, kind: str, send: Send, farewell: dict[str, Any], receive: Receive | None = None) -> None:
        self.kind = kind  # "websocket" or "stream", as the metrics name it
        self._send = send
        self._farewell = farewell
        self._receive = receive
        self._receiving: asyncio.Future[dict[str, Any]] | None = None
        self._lock = asyncio.Lock()
        self._farewell_sent = asyncio.Event()
        self.closed_for_stop = False

    async def send(self, message: dict[str, Any]) -> None:
        async with self._lock:
            if self.closed_for_stop:
                raise Stopped("the worker is stopping")
            await self._send(message)

    async def receive(self) -> dict[str, Any]:
        """The app's receive(). A stop ends one that is waiting with the disconnect: granian sends
        no close frame while a receive() is pending (measured: the send waited until the client left)."""
        if self.closed_for_stop or self._receive is None:
            return GONE
        self._receiving = asyncio.ensure_future(self._receive())
        try:
            return await self._receiving
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if self.closed_for_stop and not (current and current.cancelling()):
                return GONE
            raise
        finally:
            self._receiving = None

    async def close_for_stop(self) -> None:
        async with self._lock:
            if self.closed_for_stop:
                return
            self.closed_for_stop = True
            if self._receiving is not None:
                self._receiving.cancel()
            try:
                await self._send(self._farewell)
            finally:
                self._farewell_sent.set()

    async def farewell_written(self) -> None:
        """Once the stop's last message is out: the server must not close the connection first."""
        if self.closed_for_stop:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(DRAIN_TIMEOUT_S):
                    await self._farewell_sent.wait()


def websocket(send: Send, receive: Receive) -> LongLived:
    farewell = {"type": "websocket.close", "code": GOING_AWAY, "reason": "server stopping"}
    return LongLived("websocket", send, farewell, receive)


def event_stream(send: Send) -> LongLived:
    return LongLived("stream", send, {"type": "http.response.body", "body": b"", "more_body": False})


def is_event_stream(start: dict[str, Any]) -> bool:
    """Whether an http.response.start message begins a server-sent event stream."""
    return any(name.lower() == b"content-type" and value.startswith(EVENT_STREAM) for name, value in start["headers"])


class Worker:
    """This worker's open long-lived connections, and its stop."""

    def __init__(self) -> None:
        self.open: set[LongLived] = set()
        self.stopping = False
        self._noticed = False
        # How the server tells a worker to stop: SIGTERM, unless the server's own files set another.
        self.stop_notice: Callable[[Callable[[], Awaitable[None]]], None] = notice_on_sigterm

    async def opened(self, connection: LongLived) -> None:
        """A connection starts: kept for the stop, or closed at once when the stop has begun."""
        if not self._noticed:
            self._noticed = True
            self.stop_notice(self.drain)
        self.open.add(connection)
        metrics.long_lived_opened(connection.kind)
        if self.stopping:
            await connection.close_for_stop()

    def ended(self, connection: LongLived) -> None:
        if connection in self.open:
            self.open.remove(connection)
            metrics.long_lived_closed(connection.kind)

    async def drain(self) -> None:
        """Close every long-lived connection for the stop, within DRAIN_TIMEOUT_S."""
        self.stopping = True
        closing = [connection.close_for_stop() for connection in list(self.open)]
        if not closing:
            return
        log.info("stopping: closing %d WebSockets and event streams", len(closing))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(DRAIN_TIMEOUT_S):
                await asyncio.gather(*closing, return_exceptions=True)


_draining: set[asyncio.Task[None]] = set()


def notice_on_sigterm(drain: Callable[[], Awaitable[None]]) -> None:
    """The worker gets SIGTERM (uvicorn's and gunicorn's workers, granian's): drain first, then hand
    the signal on to the server's own handler.

    uvicorn handles it in Python (signal.signal); granian on its event loop (loop.add_signal_handler),
    where asyncio keeps one handler per signal: that one is taken from the loop and called after.
    """
    loop = asyncio.get_running_loop()

    def drain_then(server_handler: Callable[[], object]) -> None:
        async def draining() -> None:
            try:
                await drain()
            finally:
                server_handler()

        task = loop.create_task(draining())
        _draining.add(task)  # the loop keeps only a weak reference to a task
        task.add_done_callback(_draining.discard)

    # asyncio's own record of the handlers added on this loop (no public way to read one back).
    on_loop = getattr(loop, "_signal_handlers", {}).get(signal.SIGTERM)
    if on_loop is not None:
        loop.add_signal_handler(signal.SIGTERM, drain_then, lambda: on_loop._run())
        return
    in_python = signal.getsignal(signal.SIGTERM)
    if callable(in_python):
        signal.signal(
            signal.SIGTERM,
            lambda signum, frame: loop.call_soon_threadsafe(drain_then, lambda: in_python(signum, frame)),
        )
        return
    log.warning("no SIGTERM handler to go before: WebSockets and event streams close as the server closes them")


# This worker's: every WebSocket and event stream it serves registers here (served_app.py).
worker = Worker()
