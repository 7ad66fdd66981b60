"""The app as hypercorn runs it: served_app.py, with X-Forwarded-* trusted only from the proxy in front.

FORWARDED_ALLOW_IPS lists the proxy's addresses (default 127.0.0.1).
"""

import asyncio
import multiprocessing
import os
import signal
from collections.abc import Awaitable, Callable
from typing import Any, cast

from hypercorn.middleware import ProxyFixMiddleware

from pyserve_runtime import long_lived, settings, tuning
from pyserve_runtime.served_app import app as served
from pyserve_runtime.served_asgi import ASGIApp
from pyserve_runtime.trusted_peers import TrustedPeers


def websocket_schemes(app: ASGIApp) -> ASGIApp:
    """hypercorn's ProxyFixMiddleware gives a WebSocket X-Forwarded-Proto's scheme, http or https,
    where ASGI says ws or wss (as uvicorn's and granian's do): Quart answered such a WebSocket 400."""

    async def with_websocket_scheme(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket" and scope.get("scheme") in ("http", "https"):
            scope = {**scope, "scheme": scope["scheme"].replace("http", "ws")}
        await app(scope, receive, send)

    return with_websocket_scheme


class TrustedProxyFix:
    """hypercorn's ProxyFixMiddleware trusts one hop from anyone; this applies it only to the proxy."""

    def __init__(self, app: ASGIApp, trusted: TrustedPeers) -> None:
        self.app = app
        # Any: hypercorn types an ASGI app's scope as its own TypedDicts, the served layer as a dict.
        inner: Any = websocket_schemes(app)
        self.fixed: Any = ProxyFixMiddleware(inner, mode="legacy", trusted_hops=1)
        self.trusted = trusted

    def trusts(self, scope: dict[str, Any]) -> bool:
        client = scope.get("client")
        return client is not None and client[0] in self.trusted

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        target = self.fixed if scope["type"] != "lifespan" and self.trusts(scope) else self.app
        await target(scope, receive, send)


_watching: set[asyncio.Task[None]] = set()


def notice_on_shutdown_event(drain: Callable[[], Awaitable[None]]) -> None:
    """hypercorn's workers get no signal when it stops: its main process sets an Event, which each
    worker polls every 0.1 s and then waits out graceful_timeout for the connections it has open.
    Watched here too, it starts the drain (long_lived.py), which ends those connections."""
    # The Event hypercorn passes each worker process, as an argument of the process (no other way to it).
    shutdown = getattr(multiprocessing.current_process(), "_kwargs", {}).get("shutdown_event")
    if shutdown is None:
        long_lived.log.warning("no shutdown event from hypercorn: WebSockets and event streams close as it closes them")
        return

    async def watch() -> None:
        while not shutdown.is_set():
            await asyncio.sleep(0.1)
        await drain()

    loop = asyncio.get_running_loop()
    task = loop.create_task(watch())
    _watching.add(task)  # the loop keeps only a weak reference to a task
    loop.add_signal_handler(signal.SIGTERM, lambda: _watching.add(loop.create_task(drain_then_terminate(drain))))


async def drain_then_terminate(drain: Callable[[], Awaitable[None]]) -> None:
    """hypercorn's main process sends SIGTERM to every worker as soon as one has exited
    (hypercorn/run.py, `process.terminate()`), which cut a WebSocket whose close frame was still to
    be written on a busy machine. So SIGTERM waits for the drain (which a second call joins), then
    does what it would have done."""
    await drain()
    asyncio.get_running_loop().remove_signal_handler(signal.SIGTERM)
    os.kill(os.getpid(), signal.SIGTERM)


def for_hypercorn(app: Any, interface: str) -> ASGIApp:
    """An ASGI app as it is, its WebSockets and event streams told when hypercorn stops. A WSGI app on
    a pool of the plan's size (a2wsgi): hypercorn would run it on the event loop's default thread
    pool, sized from os.cpu_count(), the host's CPUs rather than the container's."""
    if interface == "asgi":
        long_lived.worker.stop_notice = notice_on_shutdown_event
        return cast(ASGIApp, app)
    from a2wsgi import WSGIMiddleware  # in WSGI projects' requirements only

    return cast(ASGIApp, WSGIMiddleware(app, workers=tuning.start_up_plan().threads))


_settings = settings.from_environment()
app = TrustedProxyFix(for_hypercorn(served, _settings.interface), TrustedPeers(_settings.forwarded_allow_ips))
