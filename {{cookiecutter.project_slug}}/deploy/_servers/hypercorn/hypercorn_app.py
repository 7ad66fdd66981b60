"""The app as hypercorn runs it: deploy/served_app.py, with X-Forwarded-* trusted only from the proxy in front.

FORWARDED_ALLOW_IPS lists the proxy's addresses (default 127.0.0.1).
{%- if cookiecutter.__interface == "wsgi" %} hypercorn would run a WSGI app on the event
loop's default thread pool, sized from os.cpu_count() (the host's CPUs, not the container's); a2wsgi
runs it on a pool of the plan's size.
{%- endif %}
"""

{% if cookiecutter.__interface == "asgi" -%}
import asyncio
import multiprocessing
from collections.abc import Awaitable, Callable

{% endif -%}
{% if cookiecutter.__interface == "wsgi" -%}
from a2wsgi import WSGIMiddleware
{% endif -%}
from hypercorn.middleware import ProxyFixMiddleware

from . import {% if cookiecutter.__interface == "asgi" %}long_lived, {% endif %}settings{% if cookiecutter.__interface == "wsgi" %}, tuning{% endif %}
from .served_app import app as served
from .trusted_peers import TrustedPeers


def websocket_schemes(app):
    """hypercorn's ProxyFixMiddleware gives a WebSocket X-Forwarded-Proto's scheme, http or https,
    where ASGI says ws or wss (as uvicorn's and granian's do): Quart answered such a WebSocket 400."""

    async def with_websocket_scheme(scope, receive, send) -> None:
        if scope["type"] == "websocket" and scope.get("scheme") in ("http", "https"):
            scope = {**scope, "scheme": scope["scheme"].replace("http", "ws")}
        await app(scope, receive, send)

    return with_websocket_scheme


class TrustedProxyFix:
    """hypercorn's ProxyFixMiddleware trusts one hop from anyone; this applies it only to the proxy."""

    def __init__(self, app, trusted: TrustedPeers) -> None:
        self.app = app
        self.fixed = ProxyFixMiddleware(websocket_schemes(app), mode="legacy", trusted_hops=1)
        self.trusted = trusted

    def trusts(self, scope: dict) -> bool:
        client = scope.get("client")
        return bool(client) and client[0] in self.trusted

    async def __call__(self, scope, receive, send) -> None:
        target = self.fixed if scope["type"] != "lifespan" and self.trusts(scope) else self.app
        await target(scope, receive, send)

{% if cookiecutter.__interface == "asgi" %}
_watching: set[asyncio.Task[None]] = set()


def notice_on_shutdown_event(drain: Callable[[], Awaitable[None]]) -> None:
    """hypercorn's workers get no signal when it stops: its main process sets an Event, which each
    worker polls every 0.1 s and then waits out graceful_timeout for the connections it has open.
    Watched here too, it starts the drain (deploy/long_lived.py), which ends those connections."""
    # The Event hypercorn passes each worker process, as an argument of the process (no other way to it).
    shutdown = multiprocessing.current_process()._kwargs.get("shutdown_event")
    if shutdown is None:
        long_lived.log.warning("no shutdown event from hypercorn: WebSockets and event streams close as it closes them")
        return

    async def watch() -> None:
        while not shutdown.is_set():
            await asyncio.sleep(0.1)
        await drain()

    task = asyncio.get_running_loop().create_task(watch())
    _watching.add(task)  # the loop keeps only a weak reference to a task


long_lived.worker.stop_notice = notice_on_shutdown_event
inner = served
{%- else %}
inner = WSGIMiddleware(served, workers=tuning.start_up_plan().threads)
{%- endif %}
app = TrustedProxyFix(inner, TrustedPeers(settings.from_environment().forwarded_allow_ips))
